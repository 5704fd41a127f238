"""The deploy context builds only what AWS accepts: names, environment and schedule, each
checked over generated contexts against tests/support/aws_rules.py (AWS's rules, cited there).

* The runner's function name (Lambda CreateFunction FunctionName: "If you specify only the
  function name, it is limited to 64 characters in length", pattern ``[a-zA-Z0-9-_]+``) and
  the stack's name (CloudFormation CreateStack StackName: "A stack name can contain only
  alphanumeric characters (case sensitive) and hyphens. It must start with an alphabetical
  character and can't be longer than 128 characters.") for every env the context accepts.
* The function's environment (Lambda: the key pattern ``[a-zA-Z]([a-zA-Z0-9_])+``, the
  reserved keys of "Defined runtime environment variables", "The total size of all
  environment variables doesn't exceed 4 KB") for every extraEnvironment it accepts.
* driftSchedule (EventBridge, "Schedule expressions for rules"): the context accepts what
  EventBridge accepts, and nothing EventBridge refuses.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from alquimista_deploy.context import ContextError, DeployContext, from_context
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.deploy.values import context, make_bundle
from tests.support import aws_rules
from tests.support.aws_rules import CRON


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle"))


def _accepted(values: dict[str, Any]) -> DeployContext | None:
    try:
        return from_context(values)
    except ContextError:
        return None


# --- names ----------------------------------------------------------------------------------

ENV = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True) | st.text(
    string.ascii_letters + string.digits + "-_.", min_size=1, max_size=70)


@_settings(200)
@given(env=ENV)
@example(env="dev")
@example(env="a" * 20)
def test_the_function_and_stack_names_meet_lambdas_and_cloudformations_rules(
        bundle: Path, env: str) -> None:
    ctx = _accepted(context(bundle, env=env))
    if ctx is None:
        return
    assert aws_rules.lambda_function_name_problem(ctx.function_name) is None, ctx.function_name
    assert aws_rules.refusal("lambda", "Invoke", {"FunctionName": ctx.function_name}) is None
    assert aws_rules.stack_name_problem(ctx.stack_name) is None, ctx.stack_name


# --- the environment --------------------------------------------------------------------------

NAME = (st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,24}", fullmatch=True)
        | st.sampled_from([*sorted(aws_rules.LAMBDA_RESERVED), "A", "TZ", "PATH", "LANG",
                           "1BAD", "BAD-NAME", "ok_1"])
        | st.text(min_size=1, max_size=10))
EXTRA = st.dictionaries(NAME, st.text(max_size=40) | st.text("x", min_size=500, max_size=2500),
                        max_size=6)


@_settings(300)
@given(extra=EXTRA)
@example(extra={"LOCK_WAIT_SECONDS": "30"})
@example(extra={"A": "1"})
@example(extra={"AWS_REGION": "us-east-1"})
@example(extra={"BIG": "x" * 4100})
def test_the_function_environment_meets_lambdas_rules(bundle: Path,
                                                      extra: dict[str, str]) -> None:
    """Whatever extraEnvironment the context accepts gives an environment Lambda takes:
    every name on the key pattern, none reserved, at most 4 KB (as JSON)."""
    ctx = _accepted(context(bundle, extraEnvironment=json.dumps(extra)))
    if ctx is None:
        return
    for variables in (ctx.function_environment(), ctx.deployed_environment()):
        assert aws_rules.lambda_environment_problem(variables) is None, variables
        assert aws_rules.refusal("lambda", "UpdateFunctionConfiguration", {
            "FunctionName": ctx.function_name,
            "Environment": {"Variables": variables}}) is None


# --- driftSchedule ------------------------------------------------------------------------------

def _cron_value(field: int) -> st.SearchStrategy[str]:
    spec = CRON[field]
    number = st.integers(spec.low - 2, spec.high + 2).map(str)
    named = st.sampled_from((*spec.names, "FOO")) if spec.names else number
    return number | named


def _cron_item(field: int) -> st.SearchStrategy[str]:
    spec = CRON[field]
    value = _cron_value(field)
    longest = spec.high - spec.low + 1 if spec.name == "Year" else spec.high
    step = st.integers(0, longest).map(str)  # longer steps: GREY below
    ordered = st.tuples(st.integers(spec.low - 1, spec.high + 1),
                        st.integers(spec.low - 1, spec.high + 1)).map(
        lambda p: f"{min(p)}-{max(p)}")
    return (value | ordered | st.just("*")
            | st.tuples(value | st.just("*") | ordered, step).map("/".join))


def _cron_field(field: int) -> st.SearchStrategy[str]:
    items = st.lists(_cron_item(field), min_size=1, max_size=3).map(",".join)
    specials = st.sampled_from(["?", "L", "LW", "15W", "32W", "W", "6L", "FRIL", "3#2",
                                "MON#1", "3#6", "8#1", "1/L"])  # L in a list: GREY
    return items | specials | st.just("?") | st.just("*")


CRON_EXPRESSION = st.tuples(*(_cron_field(i) for i in range(6))).map(
    lambda fields: f"cron({' '.join(fields)})")
# Mostly well formed: exactly one of the day fields is ?
DAY_CRON = st.tuples(*(_cron_field(i) for i in range(6)), st.booleans()).map(
    lambda f: "cron({})".format(" ".join(
        [*f[:2], "?" if f[6] else f[2], f[3], f[4] if f[6] else "?", f[5]])))
FIELD_COUNT = st.lists(st.sampled_from(["0", "3", "*", "?", "1"]), min_size=4,
                       max_size=7).map(lambda f: f"cron({' '.join(f)})")
RATE = st.tuples(st.integers(0, 9999) | st.integers(-3, 3),
                 st.sampled_from(["minute", "minutes", "hour", "hours", "day", "days",
                                  "second", "seconds", "week", "weeks", "Minutes", "DAY"])).map(
    lambda p: f"rate({p[0]} {p[1]})")
GARBAGE = st.sampled_from(["", "rate()", "cron()", "rate(1day)", "rate(1 day", "1 day",
                           "rate(1.5 hours)", "rate(one day)", "every day", "cron 0 3 * * ? *",
                           "rate(1 minute) ", "cron(0 3 * * ? *)x", "at(2026-01-01T00:00:00)",
                           "rate(\u0661 day)", "cron(\u0663 3 * * ? *)",  # Arabic-Indic digits
                           "cron(0 3 * * ? * *)"])
SCHEDULE = DAY_CRON | CRON_EXPRESSION | FIELD_COUNT | RATE | GARBAGE

KNOWN_GOOD = ["rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(1 day)",
              "rate(7 days)", "cron(0 10 * * ? *)", "cron(15 12 * * ? *)",
              "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)", "cron(0/15 * * * ? *)",
              "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)",
              "cron(0 9 ? * 2#1 *)", "cron(0 18 L * ? *)", "cron(15 10 ? * 6L 2022-2023)",
              "cron(0 3 15W * ? *)", "cron(0 3 LW * ? *)"]
"""The examples of "Schedule expressions for rules" (and its rate page), all accepted."""


def _schedule_accepted(bundle: Path, schedule: str) -> tuple[bool, str | None]:
    """Whether the context takes ``schedule`` as driftSchedule, and the value it keeps."""
    try:
        ctx = from_context(context(bundle, driftSchedule=schedule))
    except ContextError as exc:
        lines = [line.strip() for line in str(exc).splitlines()[1:]]
        assert any(line.startswith("driftSchedule") for line in lines), lines
        return False, None
    return True, ctx.drift_schedule


GREY = ["cron(0 3 ? * 1,L *)", "cron(0 3 1,L * ? *)", "cron(0 3 ? * 3#1,6#3 *)",
        "cron(0 */26 * * ? *)", "cron(0/60 3 * * ? *)", "cron(0 3 1/32 * ? *)"]
"""Where "Schedule expressions for rules" is silent but the syntax it documents (Quartz's)
refuses: L or # among other items of a field, a step past the field's highest value."""
UNDETERMINED = ["cron(0 3 ? * mon *)", "cron(0 3 ? * FRI-MON *)", "cron(0 22-2 * * ? *)",
                "cron(0  3 * * ? *)", "rate(01 day)"]
"""Nothing documented either way (names in lower case, ranges that run backwards, several
spaces between fields, a rate's leading zeros): the rule refuses them (the layer refuses
what AWS does not promise to take); the context is not held to either answer."""


@pytest.mark.parametrize("schedule", GREY)
def test_where_the_document_is_silent_the_context_refuses_as_quartz_does(
        bundle: Path, schedule: str) -> None:
    assert aws_rules.schedule_problem(schedule) is not None
    taken, kept = _schedule_accepted(bundle, schedule)
    assert not taken or kept is None or aws_rules.schedule_problem(kept) is None, (
        f"the context takes {schedule!r}, which EventBridge's syntax refuses")


@pytest.mark.parametrize("schedule", UNDETERMINED)
def test_what_nothing_documents_the_rule_refuses(schedule: str) -> None:
    assert aws_rules.schedule_problem(schedule) is not None


@pytest.mark.parametrize("schedule", KNOWN_GOOD)
def test_the_documented_schedules_are_eventbridges_and_the_contexts(bundle: Path,
                                                                    schedule: str) -> None:
    assert aws_rules.schedule_problem(schedule) is None
    assert _schedule_accepted(bundle, schedule) == (True, schedule)


@_settings(1500)
@given(schedule=SCHEDULE)
@example(schedule="cron(* 0 ? JUL,* * *)")  # JUL's L is a name's, not the L wildcard
@example(schedule="cron(0 0 ? * WED,FRI *)")
def test_the_context_accepts_exactly_the_schedules_eventbridge_accepts(
        bundle: Path, schedule: str) -> None:
    """EventBridge, "Schedule expressions for rules": six fields with the table's values and
    wildcards, ? in exactly one of Day-of-month and Day-of-week; rate(value unit) with a
    positive value, the unit singular for 1 and plural otherwise."""
    taken, kept = _schedule_accepted(bundle, schedule)
    if taken and kept is not None:  # nothing EventBridge refuses gets through, as deployed
        assert aws_rules.schedule_problem(kept) is None, (schedule, kept)
    if aws_rules.schedule_problem(schedule) is None:  # nothing EventBridge takes is refused
        assert taken, schedule
