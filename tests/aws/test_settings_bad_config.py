"""The migration timeouts in the function's environment are settings like the others: a
malformed one is BAD_CONFIG at every event (a no-op and ``current`` included), and the
CDK check (``Settings.problems``) refuses it before a deploy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import URL

from alquimista_schema.settings import Settings
from tests.support.helpers import Invoke, secret_for

NAMES = ("ALQUIMISTA_LOCK_TIMEOUT", "ALQUIMISTA_STATEMENT_TIMEOUT")
MALFORMED = ["banana", "\u0665s", "999999h", "1.5s"]  # "\u0665" is an Arabic-Indic 5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_timeout_is_a_problem_the_cdk_check_reports(name: str, value: str) -> None:
    problems = Settings.problems({name: value})
    assert list(problems) == [name]
    assert problems[name].startswith(f"{name} must look like 250ms, 5s, 2min, 1h or 0")


def test_timeouts_that_are_right_are_read_and_kept() -> None:
    read = Settings.from_env({"ALQUIMISTA_LOCK_TIMEOUT": " 2s ",
                              "ALQUIMISTA_STATEMENT_TIMEOUT": "10min"})
    assert (read.lock_timeout, read.statement_timeout) == ("2s", "10min")
    assert (Settings.from_env({}).lock_timeout, Settings.from_env({}).statement_timeout) == (
        None, None)


@pytest.mark.parametrize("name", NAMES)
def test_the_lambda_answers_bad_config_to_every_event(
        name: str, head_url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> None:
    secret = make_secret(secret_for(head_url))
    for event in ({"action": "current"}, {"action": "upgrade", "target": "head"}):
        # the same events, with the value right, are answered (so BAD_CONFIG is the value's)
        fine = invoke(event, secret=secret, env={name: "3s"})
        assert (fine["status"], fine.get("error_code")) in {("success", None), ("noop", None)}
        answer = invoke(event, env={name: "\u0665s"})
        assert (answer["status"], answer["error_code"]) == ("error", "BAD_CONFIG"), answer
        assert answer["error"].startswith(f"{name} must look like 250ms"), answer["error"]


@pytest.mark.parametrize(("raw", "keep"), [(None, 5), ("1", 1), (" 3 ", 3), ("100", 100)])
def test_snapshot_keep_is_read_with_the_rest(raw: str | None, keep: int) -> None:
    assert Settings.from_env({} if raw is None else {"SNAPSHOT_KEEP": raw}).snapshot_keep == keep


@pytest.mark.parametrize("raw", ["0", "101", "2.5", "-1", "five", "\u0663", "1e2"])
def test_a_snapshot_keep_out_of_range_is_refused(raw: str) -> None:
    assert Settings.problems({"SNAPSHOT_KEEP": raw}) == {
        "SNAPSHOT_KEEP": f"SNAPSHOT_KEEP must be a whole number from 1 to 100, not {raw!r}"}
