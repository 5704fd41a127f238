"""The protocol without a database: parsing events and reading settings, as tables."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from typing import Any

import pytest

from alquimista_schema import settings
from alquimista_schema.aws import actions, protocol
from alquimista_schema.aws.protocol import Request
from alquimista_schema.aws.runner import JsonLog, Runner
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.connect.secrets import Credentials, SecretCache
from alquimista_schema.errors import BadEvent, ConfigurationError
from alquimista_schema.settings import Settings
from alquimista_schema.targets import Target, parse
from tests.support.helpers import MIGRATOR_PASSWORD, leaks


def up(text: str) -> Target:
    return parse(text, "up")


PARSED = [
    (None, Request("upgrade", up("head"))),
    ({}, Request("upgrade", up("head"))),
    ({"action": "upgrade", "target": "017"}, Request("upgrade", up("017"), named="017")),
    ({"action": "upgrade", "target": "all"}, Request("upgrade", up("head"), named="all")),
    ({"action": "run-migration", "target": "all"},
     Request("run-migration", up("head"), named="all")),
    ({"action": "run-migration", "target": "017"},
     Request("run-migration", up("017"), named="017")),
    ({"action": "plan"}, Request("plan", up("head"))),
    ({"action": "downgrade", "target": "-1", "allow_downgrade": True, "confirm": "-1"},
     Request("downgrade", parse("-1", "down"), True, "-1", named="-1")),
    ({"action": "adopt", "dry_run": True}, Request("adopt", dry_run=True)),
    ({"action": "list-migrations"}, Request("list-migrations")),
    ({"action": "current"}, Request("current")),
]


@pytest.mark.parametrize(("event", "request_"), PARSED, ids=[json.dumps(e) for e, _ in PARSED])
def test_parse_normalises_once(event: Any, request_: Request) -> None:
    assert protocol.parse(event) == request_


ACTIONS = ", ".join(protocol.ACTIONS)  # in the README's order


def allowed(action: str) -> str:
    return ", ".join(sorted(protocol._KEYS[action])) or "none"


DEEP: Any = []
for _ in range(3000):
    DEEP = [DEEP]


def sized(size: int) -> dict[str, Any]:
    """An upgrade event of exactly ``size`` bytes as JSON, through a stray key."""
    return {"x": "y" * (size - len(json.dumps({"x": ""})))}


# Every refusal, word for word: what is wrong, and what would be right.
REFUSED = [
    ("upgrade", "the event must be a JSON object, not str"),
    ([1], "the event must be a JSON object, not list"),
    ({("a",): 1}, "the event is not plain JSON"),
    ({"action": "upgrade", "x": DEEP}, "the event is not plain JSON"),
    ({"blob": "x" * 5000}, "the event is 5012 bytes; at most 4096 are accepted"),
    (sized(4097), "the event is 4097 bytes; at most 4096 are accepted"),
    (sized(4096), f"unexpected key(s) for upgrade: 'x' (allowed: {allowed('upgrade')})"),
    ({"action": "explode"}, f"unknown action 'explode'; expected one of {ACTIONS}"),
    ({"action": 7}, f"unknown action 7; expected one of {ACTIONS}"),
    ({"action": "current", "target": "head"},
     "unexpected key(s) for current: 'target' (allowed: none)"),
    ({"action": "downgrade", "target": "017", "x": 1, "a": 2},
     f"unexpected key(s) for downgrade: 'a', 'x' (allowed: {allowed('downgrade')})"),
    ({"action": "current", "k" * 38: 1, "j" * 39: 2},
     f"unexpected key(s) for current: '{'j' * 36}..., {'k' * 38!r} (allowed: none)"),
    ({"action": "downgrade"}, "downgrade needs a target"),
    ({"action": "run-migration"}, "run-migration needs a target"),
    ({"target": ""}, "a target must be a revision id, head, base, +N or -N, not ''"),
    ({"target": "017\n"}, "'017\\n' is not a target: expected a revision id, head, base, +N "
                          "or -N (e.g. 017, head, +1, head-1)"),
    ({"target": "-1"}, "upgrade -1 goes backwards: use downgrade -1"),
    ({"action": "downgrade", "target": "+1"}, "downgrade +1 goes forwards: use upgrade +1"),
    ({"target": "head+1"}, "'head+1' is past the end of the history"),
    ({"target": "+0"}, "'+0' moves nowhere: a relative step needs N >= 1"),
    ({"action": "downgrade", "target": "017", "allow_downgrade": "yes"},
     "allow_downgrade must be true or false"),
    ({"action": "downgrade", "target": "017", "confirm": 17},
     "confirm must be a string repeating the target revision"),
    ({"action": "adopt", "dry_run": 1}, "dry_run must be true or false"),
]


@pytest.mark.parametrize(("event", "message"), REFUSED,
                         ids=[re.sub(r"[^\w ,.:'()+-]", "_", m[:60]) for _, m in REFUSED])
def test_parse_refuses_saying_what_is_wrong(event: Any, message: str) -> None:
    with pytest.raises(BadEvent) as caught:
        protocol.parse(event)
    assert str(caught.value) == message


@pytest.mark.parametrize(("event", "action"), [
    (None, "upgrade"), ({}, "upgrade"), ({"action": "plan"}, "plan"),
    ({"action": "run-migration", "target": 5}, "run-migration"),  # named even when refused
    ({"action": "explode"}, "invalid"), ({"action": 5}, "invalid"), ({"action": None}, "invalid"),
    ("upgrade", "invalid"), ([{"action": "plan"}], "invalid"), (0, "invalid"),
])
def test_the_answer_names_the_action_asked_for(event: Any, action: str) -> None:
    assert protocol.action_name(event) == action


# --- booleans are JSON booleans, for every flag ---------------------------------------

# Every boolean of a Request, with the actions whose events may set it: a flag added
# later is covered here without anyone remembering to list it.
FLAGS = sorted((action, f.name) for f in dataclasses.fields(Request) if f.type == "bool"
               for action, keys in protocol._KEYS.items() if f.name in keys)
assert {key for _, key in FLAGS} >= {"allow_downgrade", "dry_run"}
assert {key for _, key in FLAGS} == {f.name for f in dataclasses.fields(Request)
                                     if f.type == "bool"}  # each one reachable by an event
# What a loose reading would take for true (or false): strings, numbers, null, containers.
NOT_BOOLEANS: list[Any] = ["true", "false", "True", "TRUE", "yes", "no", "1", "0", "", "on",
                           1, 0, -1, 1.0, 0.0, None, [], [True], {}, {"value": True}]


def with_flag(action: str, key: str, value: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"action": action, key: value}
    if "target" in protocol._KEYS[action]:
        event["target"] = "017"
    return event


@pytest.mark.parametrize(("action", "key"), FLAGS)
@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
def test_a_flag_is_only_ever_a_json_boolean(action: str, key: str, value: Any) -> None:
    """A downgrade flag spelled "true" is refused, never read as true (nor as false)."""
    with pytest.raises(BadEvent) as caught:
        protocol.parse(with_flag(action, key, value))
    assert str(caught.value) == f"{key} must be true or false"


@pytest.mark.parametrize(("action", "key"), FLAGS)
@pytest.mark.parametrize("value", [True, False, None], ids=["true", "false", "absent"])
def test_a_json_boolean_flag_is_taken_as_written(action: str, key: str, value: Any) -> None:
    event = with_flag(action, key, value)
    if value is None:
        del event[key]  # absent means false
    request = protocol.parse(event)
    assert getattr(request, key) is bool(value)
    assert [getattr(request, other) for _, other in FLAGS if other != key] == \
        [False for _, other in FLAGS if other != key]  # one flag never sets another


SETTINGS = [
    ({}, Settings(None)),
    ({"DB_SECRET_ARN": "s", "ENVIRONMENT": "Production"},
     Settings("s", "prod", lint_policy="enforce", snapshot=True,  # prod snapshots first
              table_policy="enforce")),
    ({"ENVIRONMENT": "PROD", "LINT_POLICY": "WARN"},
     Settings(None, "prod", snapshot=True, table_policy="enforce")),
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


NUMBER_LIMITS = [
    # variable, lowest and highest accepted, the message's range
    ("CONNECT_TIMEOUT_SECONDS", "2", "300", "from 2 to 300"),
    ("CONNECT_BUDGET_SECONDS", "0", "900", "from 0 to 900"),
    ("DEADLINE_MARGIN_SECONDS", "1", "120", "from 1 to 120"),
    ("LOCK_WAIT_SECONDS", "0", "900", "from 0 to 900"),
    ("SNAPSHOT_WAIT_SECONDS", "1", "900", "from 1 to 900"),
]


@pytest.mark.parametrize(("name", "low", "high", "between"), NUMBER_LIMITS)
def test_each_number_is_read_within_its_bounds_inclusive(name: str, low: str, high: str,
                                                         between: str) -> None:
    for value in (low, high):
        assert Settings.problems({name: value}) == {}
    for value in (str(float(low) - 0.5), str(float(high) + 0.5)):
        assert Settings.problems({name: value}) == {
            name: f"{name} must be a number of seconds {between}, not {value!r}"}


@pytest.mark.parametrize("raw", ["\u0665", "1e1", "1_0", "0x10", "5 s", "inf", "nan", "+5"])
def test_a_number_of_seconds_is_ascii_digits_and_a_point_only(raw: str) -> None:
    """float() takes all but 0x10 and "5 s" (an Arabic-Indic 5, 1e1, 1_0, +5; inf and nan
    then fail as not finite); the grammar takes none."""
    assert Settings.problems({"CONNECT_TIMEOUT_SECONDS": raw}) == {
        "CONNECT_TIMEOUT_SECONDS": "CONNECT_TIMEOUT_SECONDS must be a number of seconds from "
                                   f"2 to 300, not {raw!r}"}
    assert Settings.problems({"CONNECT_TIMEOUT_SECONDS": f" {len(raw) + 4}.5 "}) == {}


def test_every_wrong_value_is_named_at_once_and_defaults_stand_in() -> None:
    long = "x" * 45
    env = {"ENVIRONMENT": "qa", "LINT_POLICY": long, "CONNECT_TIMEOUT_SECONDS": long,
           "LOCK_WAIT_SECONDS": "-1"}
    read, problems = Settings.read(env)
    assert problems == {
        "ENVIRONMENT": "ENVIRONMENT must be one of dev, staging, prod (or production), "
                       "not 'qa'",
        "LINT_POLICY": f"LINT_POLICY must be enforce, warn or off, not {'x' * 40!r}",
        "CONNECT_TIMEOUT_SECONDS": "CONNECT_TIMEOUT_SECONDS must be a number of seconds from "
                                   f"2 to 300, not {'x' * 40!r}",
        "LOCK_WAIT_SECONDS": "LOCK_WAIT_SECONDS must be a number of seconds from 0 to 900, "
                             "not '-1'"}
    assert (read.environment, read.lint_policy, read.connect_timeout, read.lock_wait) == \
        ("dev", "warn", 10, None)
    budget = Settings.read({"CONNECT_BUDGET_SECONDS": "x", "DEADLINE_MARGIN_SECONDS": "0"})[0]
    assert (budget.connect_budget, budget.margin) == (45.0, 10.0)  # the defaults stand in
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == "; ".join(problems.values())


@pytest.mark.parametrize(("env", "policy"), [
    ({}, "warn"), ({"ENVIRONMENT": "prod"}, "enforce"), ({"LINT_POLICY": "off"}, "off"),
    ({"LINT_POLICY": "OFF", "ENVIRONMENT": "prod"}, "off"), ({"LINT_POLICY": "Warn"}, "warn"),
    ({"LINT_POLICY": "enforce"}, "enforce"),
])
def test_the_lint_policy(env: dict[str, str], policy: str) -> None:
    assert Settings.from_env(env).lint_policy == policy


SNAPSHOTS = [
    # environment variables, ENVIRONMENT, the CLI's --snapshot/--no-snapshot: (on?, cluster)
    ({}, "dev", None, (False, None)),
    ({}, "prod", None, (True, None)),  # unset: on in prod
    ({}, "staging", None, (False, None)),
    ({"SNAPSHOT_BEFORE_UPGRADE": "true"}, "dev", None, (True, None)),
    ({"SNAPSHOT_BEFORE_UPGRADE": " FALSE "}, "prod", None, (False, None)),
    ({"SNAPSHOT_BEFORE_UPGRADE": ""}, "prod", None, (True, None)),
    ({"SNAPSHOT_BEFORE_UPGRADE": "true"}, "prod", False, (False, None)),  # the flag wins
    ({"SNAPSHOT_BEFORE_UPGRADE": "false"}, "dev", True, (True, None)),
    ({"DB_CLUSTER_IDENTIFIER": " aurora-main-1 "}, "dev", None, (False, "aurora-main-1")),
    ({"DB_CLUSTER_IDENTIFIER": "A" + "b" * 62}, "dev", None, (False, "A" + "b" * 62)),
    ({"DB_CLUSTER_IDENTIFIER": "  "}, "dev", None, (False, None)),
]


@pytest.mark.parametrize(("env", "environment", "wanted", "expected"), SNAPSHOTS)
def test_whether_and_which_cluster_to_snapshot(env: dict[str, str], environment: str,
                                               wanted: bool | None,
                                               expected: tuple[bool, str | None]) -> None:
    assert settings.snapshot_setting(env, environment, wanted) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"SNAPSHOT_BEFORE_UPGRADE": "yes"}, "SNAPSHOT_BEFORE_UPGRADE must be true or false, not "
                                         "'yes'"),
    ({"SNAPSHOT_BEFORE_UPGRADE": "1" * 45}, "SNAPSHOT_BEFORE_UPGRADE must be true or false, "
                                            f"not {'1' * 40!r}"),
    ({"DB_CLUSTER_IDENTIFIER": "1-cluster"}, "DB_CLUSTER_IDENTIFIER must be an Aurora cluster "
                                             "identifier (letters, digits, hyphens), not "
                                             "'1-cluster'"),
    ({"DB_CLUSTER_IDENTIFIER": "a" + "b" * 63}, "DB_CLUSTER_IDENTIFIER must be an Aurora "
                                                "cluster identifier (letters, digits, hyphens), "
                                                f"not {('a' + 'b' * 63)[:70]!r}"),
    ({"DB_CLUSTER_IDENTIFIER": "c" * 80}, "DB_CLUSTER_IDENTIFIER must be an Aurora cluster "
                                          "identifier (letters, digits, hyphens), not "
                                          f"{'c' * 70!r}"),
    ({"DB_CLUSTER_IDENTIFIER": "my_cluster"}, "DB_CLUSTER_IDENTIFIER must be an Aurora cluster "
                                              "identifier (letters, digits, hyphens), not "
                                              "'my_cluster'"),
])
def test_a_snapshot_setting_that_is_wrong_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings.snapshot_setting(env, "dev")
    assert str(caught.value) == message


IAM = {"DB_AUTH": "iam", "DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_SSLROOTCERT": "/c"}


@pytest.mark.parametrize(("env", "mode"), [
    ({}, "password"), ({"DB_AUTH": ""}, "password"), ({"DB_AUTH": " Password "}, "password"),
    (IAM, "iam"), ({**IAM, "DB_AUTH": "IAM"}, "iam"),
])
def test_the_authentication_mode(env: dict[str, str], mode: str) -> None:
    assert settings.auth_mode(env) == mode


@pytest.mark.parametrize(("env", "message"), [
    ({"DB_AUTH": "kerberos"}, "DB_AUTH must be password or iam, not 'kerberos'"),
    ({"DB_AUTH": "k" * 45}, f"DB_AUTH must be password or iam, not {'k' * 40!r}"),
    ({"DB_AUTH": "iam"}, "DB_AUTH=iam needs DB_HOST, DB_NAME, DB_USER, DB_SSLROOTCERT (IAM "
                         "tokens are accepted over verify-full TLS only)"),
    ({**IAM, "DB_USER": "", "DB_SSLROOTCERT": ""}, "DB_AUTH=iam needs DB_USER, DB_SSLROOTCERT "
                                                   "(IAM tokens are accepted over verify-full "
                                                   "TLS only)"),
])
def test_an_authentication_mode_that_cannot_work_is_refused(env: dict[str, str],
                                                             message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings.auth_mode(env)
    assert str(caught.value) == message


def test_the_snapshot_and_authentication_settings_are_read_with_the_rest() -> None:
    read = Settings.from_env({**IAM, "ENVIRONMENT": "prod", "DB_CLUSTER_IDENTIFIER": "main",
                              "SNAPSHOT_WAIT_SECONDS": "30"})
    assert (read.snapshot, read.cluster, read.snapshot_wait, read.auth) == (True, "main", 30.0,
                                                                            "iam")
    defaults, problems = Settings.read({"SNAPSHOT_BEFORE_UPGRADE": "maybe", "DB_AUTH": "x"})
    assert (defaults.snapshot, defaults.cluster, defaults.snapshot_wait, defaults.auth) == (
        False, None, 600.0, "password")
    assert sorted(problems) == ["DB_AUTH", "SNAPSHOT_BEFORE_UPGRADE"]


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


def test_unset_numbers_take_the_documented_defaults() -> None:
    """The README's defaults (10, 45, 10, 600 s, no lock limit) are what an empty environment
    gives, and what a Settings made in code starts from."""
    read, problems = Settings.read({})
    assert problems == {}
    assert (read.connect_timeout, read.connect_budget, read.margin, read.lock_wait,
            read.snapshot_wait) == (10, 45.0, 10.0, None, 600.0)
    assert read == Settings(secret_id=None)


@pytest.mark.parametrize(("env", "flag", "read"), [
    ({}, None, ("dev", "warn", False, None)),
    ({"ENVIRONMENT": "prod"}, None, ("prod", "enforce", True, None)),
    ({"ENVIRONMENT": "prod", "LINT_POLICY": "Warn", "SNAPSHOT_BEFORE_UPGRADE": "false"}, None,
     ("prod", "warn", False, None)),
    ({"ENVIRONMENT": "prod", "DB_CLUSTER_IDENTIFIER": "aurora-1"}, False,
     ("prod", "enforce", False, "aurora-1")),  # the CLI's --no-snapshot wins
    ({"SNAPSHOT_BEFORE_UPGRADE": "false", "DB_CLUSTER_IDENTIFIER": "aurora-1"}, True,
     ("dev", "warn", True, "aurora-1")),  # and --snapshot
    # the function's own variables are not a local door's: never read, never refused
    ({"CONNECT_TIMEOUT_SECONDS": "abc", "DB_AUTH": "kerberos", "DB_SECRET_ARN": "s"}, None,
     ("dev", "warn", False, None)),
])
def test_a_local_door_reads_what_the_lambda_reads_of_its_environment(
        env: dict[str, str], flag: bool | None, read: tuple[Any, ...]) -> None:
    local = settings.local(env, flag)
    assert (local.environment, local.lint_policy, local.snapshot, local.cluster) == read
    assert (local.secret_id, local.connect_timeout, local.auth) == (None, 10, "password")


@pytest.mark.parametrize(("env", "message"), [
    ({"ENVIRONMENT": "qa", "LINT_POLICY": "strict"},
     "ENVIRONMENT must be one of dev, staging, prod (or production), not 'qa'; "
     "LINT_POLICY must be enforce, warn or off, not 'strict'"),
    ({"SNAPSHOT_BEFORE_UPGRADE": "yes"},
     "SNAPSHOT_BEFORE_UPGRADE must be true or false, not 'yes'"),
])
def test_a_local_door_refuses_what_the_lambda_refuses(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings.local(env)
    assert str(caught.value) == message
