"""The protocol without a database: parsing events and reading settings, as tables."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from alquimista_schema.aws import actions, protocol
from alquimista_schema.aws.protocol import Request
from alquimista_schema.aws.runner import JsonLog, Runner
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.connect.secrets import Credentials, SecretCache
from alquimista_schema.errors import BadEvent, ConfigurationError
from alquimista_schema.settings import Settings
from tests.support.helpers import MIGRATOR_PASSWORD, leaks

PARSED = [
    (None, Request("upgrade", "head")),
    ({}, Request("upgrade", "head")),
    ({"action": "upgrade", "target": "017"}, Request("upgrade", "017", named="017")),
    ({"action": "upgrade", "target": "all"}, Request("upgrade", "head", named="all")),
    ({"action": "run-migration", "target": "all"},
     Request("run-migration", "head", named="all")),
    ({"action": "run-migration", "target": "017"},
     Request("run-migration", "017", named="017")),
    ({"action": "plan"}, Request("plan", "head")),
    ({"action": "downgrade", "target": "-1", "allow_downgrade": True, "confirm": "-1"},
     Request("downgrade", "-1", True, "-1", named="-1")),
    ({"action": "adopt", "dry_run": True}, Request("adopt", dry_run=True)),
    ({"action": "list-migrations"}, Request("list-migrations")),
    ({"action": "current"}, Request("current")),
]


@pytest.mark.parametrize(("event", "request_"), PARSED, ids=[json.dumps(e) for e, _ in PARSED])
def test_parse_normalises_once(event: Any, request_: Request) -> None:
    assert protocol.parse(event) == request_


REFUSED = [
    ("upgrade", "must be a JSON object, not str"),
    ([1], "must be a JSON object, not list"),
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"action": "current", "target": "head"}, "unexpected key(s) for current: 'target'"),
    ({"action": "downgrade"}, "downgrade needs a target"),
    ({"action": "run-migration"}, "run-migration needs a target"),
    ({"target": ""}, "a target must be"),
    ({"target": "017\n"}, "is not a target"),
    ({"target": "-1"}, "upgrade -1 goes backwards: use downgrade -1"),
    ({"action": "downgrade", "target": "+1"}, "downgrade +1 goes forwards"),
    ({"target": "head+1"}, "past the end of the history"),
    ({"target": "+0"}, "moves nowhere"),
    ({"action": "downgrade", "target": "017", "allow_downgrade": "yes"},
     "allow_downgrade must be true or false"),
    ({"action": "downgrade", "target": "017", "confirm": 17}, "confirm must be a string"),
    ({"action": "adopt", "dry_run": 1}, "dry_run must be true or false"),
    ({"blob": "x" * 5000}, "at most 4096 are accepted"),
]


@pytest.mark.parametrize(("event", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_parse_refuses_saying_what_is_wrong(event: Any, message: str) -> None:
    with pytest.raises(BadEvent) as caught:
        protocol.parse(event)
    assert message in str(caught.value)


SETTINGS = [
    ({}, Settings(None)),
    ({"DB_SECRET_ARN": "s", "ENVIRONMENT": "Production"},
     Settings("s", "prod", lint_policy="enforce")),
    ({"ENVIRONMENT": "PROD", "LINT_POLICY": "WARN"}, Settings(None, "prod")),
    ({"ENVIRONMENT": "staging"}, Settings(None, "staging")),
    ({"CONNECT_TIMEOUT_SECONDS": "3", "CONNECT_BUDGET_SECONDS": "0",
      "DEADLINE_MARGIN_SECONDS": "2.5", "LOCK_WAIT_SECONDS": "0"},
     Settings(None, connect_timeout=3, connect_budget=0.0, margin=2.5, lock_wait=0.0)),
    ({"CONNECT_TIMEOUT_SECONDS": " "}, Settings(None)),
]


@pytest.mark.parametrize(("env", "expected"), SETTINGS)
def test_settings_from_the_environment(env: dict[str, str], expected: Settings) -> None:
    assert Settings.from_env(env) == expected


BAD_SETTINGS = [
    ({"ENVIRONMENT": "qa"}, "ENVIRONMENT must be one of dev, staging, prod"),
    ({"LINT_POLICY": "strict"}, "LINT_POLICY must be enforce, warn or off"),
    ({"CONNECT_TIMEOUT_SECONDS": "nan"}, "CONNECT_TIMEOUT_SECONDS must be a number"),
    ({"CONNECT_TIMEOUT_SECONDS": "inf"}, "CONNECT_TIMEOUT_SECONDS must be a number"),
    ({"CONNECT_TIMEOUT_SECONDS": "0"}, "from 2 to 300"),  # libpq's 0 waits forever
    ({"CONNECT_TIMEOUT_SECONDS": "-5"}, "from 2 to 300"),
    ({"CONNECT_BUDGET_SECONDS": "ten"}, "CONNECT_BUDGET_SECONDS must be a number"),
    ({"DEADLINE_MARGIN_SECONDS": "0"}, "DEADLINE_MARGIN_SECONDS must be a number"),
    ({"LOCK_WAIT_SECONDS": "-1"}, "LOCK_WAIT_SECONDS must be a number"),
    ({"LOCK_WAIT_SECONDS": "1e999"}, "LOCK_WAIT_SECONDS must be a number"),
]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS, ids=[m for _, m in BAD_SETTINGS])
def test_wrong_settings_are_refused_not_replaced(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def quiet_runner(env: dict[str, str]) -> tuple[Runner, io.StringIO]:
    stream = io.StringIO()
    runner = Runner.from_environment(env)
    runner.log = JsonLog(stream)
    return runner, stream


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "soon"])
def test_a_wrong_setting_is_answered_in_the_protocols_shape(value: str) -> None:
    runner, _ = quiet_runner({"DB_SECRET_ARN": "s", "CONNECT_TIMEOUT_SECONDS": value})
    answer = runner.handle({"action": "run-migration", "target": "all"}, request_id="r1")
    assert (answer["status"], answer["error_code"]) == ("error", "BAD_CONFIG")
    assert "CONNECT_TIMEOUT_SECONDS" in answer["error"]
    assert answer["action"] == "run-migration"
    assert answer["message"] == "Migration execution failed"  # the legacy key, still there


def test_a_bug_answers_internal_error_logged_with_its_traceback_and_no_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    runner, stream = quiet_runner({"DB_SECRET_ARN": "s"})
    assert isinstance(runner.secrets, SecretCache)
    url = Dsn("h", 5432, "u", MIGRATOR_PASSWORD, "d")
    monkeypatch.setattr(runner.secrets, "_cached", Credentials(url, "v1"))

    def broken(call: actions.Call) -> dict[str, Any]:
        raise ValueError(f"cannot use {url.render_as_string(hide_password=False)}")

    monkeypatch.setitem(actions.HANDLERS, "history", broken)
    answer = runner.handle({"action": "history"}, request_id="r2")
    assert (answer["status"], answer["error_code"]) == ("error", "INTERNAL_ERROR")
    assert answer["error"].startswith("unexpected ValueError: cannot use ")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [failed] = [line for line in lines if line["step"] == "event.failed"]
    assert failed["level"] == "ERROR"
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert "in broken" in failed["traceback"]
    assert not leaks(stream.getvalue() + json.dumps(answer))
    assert "***" in failed["traceback"]
