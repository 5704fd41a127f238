"""`alquimista-schema invoke`: Lambda's API through boto3, over real HTTP, against a stand-in
(tests/tooling/lambda_standin.py) and a silent listener: bounded waits, one Invoke at most."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from alquimista_schema.cli import main
from alquimista_schema.tooling import invoke as invoking
from tests.tooling import lambda_standin
from tests.tooling.lambda_standin import HANG, Reply, StandIn

FUNCTION = "aurora-migrations-runner-dev"
SUCCESS = {"status": "success", "action": "run-migration", "from_revision": None,
           "to_revision": "017", "applied": [
               {"revision": "lead_ingestion", "description": "Lead ingestion schema",
                "duration_ms": 40.1},
               {"revision": "017", "description": "dry_run_log", "duration_ms": 6.2}],
           "migration": "017", "message": "Migration 017 executed successfully",
           "duration_ms": 612.0, "request_id": "r-1"}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Credentials and a region from the environment only: no profile, no file of yours."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_MAX_ATTEMPTS",
                 "AWS_RETRY_MODE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    return monkeypatch


@pytest.fixture
def lam(aws_env: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with lambda_standin.serve() as state:
        aws_env.setenv("AWS_ENDPOINT_URL_LAMBDA", state.endpoint)
        yield state


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, ["invoke", "--function", FUNCTION, *args])
    print(result.output)
    return result


def test_success_prints_what_was_applied(lam: StandIn) -> None:
    lam.replies.append(Reply(SUCCESS))
    result = run("--action", "run-migration", "--target", "017")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{FUNCTION}: run-migration success (base -> 017) in 612.0 ms"
    assert lines[1].split() == ["lead_ingestion", "40.1", "ms", "Lead", "ingestion", "schema"]
    assert "message: Migration 017 executed successfully" in result.stdout
    assert lam.invocations == [{"function": FUNCTION, "invocation_type": "RequestResponse",
                                "log_type": "None",
                                "event": {"action": "run-migration", "target": "017"}}]
    assert lam.configurations == 1


def test_error_answer_exits_1_and_says_what_to_do(lam: StandIn) -> None:
    lam.replies.append(Reply({"status": "error", "action": "upgrade", "error_code": "LOCK_TIMEOUT",
                              "error": "another migration holds the lock: pid 42", "applied": [],
                              "duration_ms": 1000, "from_revision": None, "to_revision": None}))
    result = run()
    assert result.exit_code == 1
    assert "  LOCK_TIMEOUT: another migration holds the lock: pid 42" in result.stdout
    assert lam.invocations[0]["event"] == {}


def test_json_prints_the_raw_answer_and_noop_is_success(lam: StandIn) -> None:
    answer = {**SUCCESS, "status": "noop", "applied": []}
    lam.replies.append(Reply(answer))
    result = run("--action", "upgrade", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == answer


def test_function_error_exits_1(lam: StandIn) -> None:
    lam.replies.append(Reply({"errorMessage": "Task timed out after 300.00 seconds",
                              "errorType": "Sandbox.Timedout"}, function_error="Unhandled"))
    result = run()
    assert result.exit_code == 1
    assert "the function failed (Unhandled, Sandbox.Timedout): Task timed out" in result.stdout


def test_log_tail_is_decoded(lam: StandIn) -> None:
    log = 'START RequestId: r-1\n{"step": "event.accepted"}\nEND\n'
    lam.replies.append(Reply(SUCCESS, log=log))
    result = run("--log-tail")
    assert result.exit_code == 0
    assert '{"step": "event.accepted"}' in result.stderr
    assert lam.invocations[0]["log_type"] == "Tail"


def test_payload_file(lam: StandIn, tmp_path: Path) -> None:
    event = {"action": "downgrade", "target": "017", "allow_downgrade": True, "confirm": "017"}
    (tmp_path / "event.json").write_text(json.dumps(event))
    lam.replies.append(Reply({**SUCCESS, "action": "downgrade"}))
    assert run("--payload-file", str(tmp_path / "event.json")).exit_code == 0
    assert lam.invocations[0]["event"] == event


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("TooManyRequestsException", 429, "throttled"),
    ("ResourceNotFoundException", 404, "no such function"),
    ("AccessDeniedException", 403, "lambda:InvokeFunction"),
])
def test_client_errors_exit_1_with_a_reason_and_are_not_retried(
        lam: StandIn, code: str, status: int, expected: str) -> None:
    lam.replies.append(Reply(status=status, error_type=code))
    result = run()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot invoke {FUNCTION!r}: ")
    assert expected in result.stderr
    assert len(lam.invocations) == 1  # a throttled Invoke is not retried either


def test_a_missing_function_is_found_before_anything_is_invoked(lam: StandIn) -> None:
    lam.missing = True
    result = run()
    assert result.exit_code == 1
    assert "no such function in this account and region" in result.stderr
    assert lam.invocations == []


def test_without_leave_to_read_the_configuration_lambdas_maximum_is_waited(lam: StandIn) -> None:
    lam.timeout = None  # GetFunctionConfiguration denied
    lam.replies.append(Reply(SUCCESS))
    result = run()
    assert result.exit_code == 0
    assert "lambda:GetFunctionConfiguration denied): waiting up to Lambda's maximum, 900 s" \
        in result.stderr
    assert len(lam.invocations) == 1


def test_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text("{not json")
    assert run("--payload-file", str(tmp_path / "e.json"), "--action", "x").exit_code == 2
    assert run("--payload-file", str(tmp_path / "e.json")).exit_code == 2
    assert CliRunner().invoke(main, ["invoke"]).exit_code == 2


# --- bounded, and sent once -------------------------------------------------------------


def test_an_unanswered_invoke_ends_at_its_bound_and_is_never_sent_again(
        lam: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's timeout (1 s here) plus the margin; botocore's retry would send the
    migration a second time, and AWS_MAX_ATTEMPTS in the environment must not bring it back."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setattr(invoking, "MARGIN_SECONDS", 1)
    lam.timeout = 1
    lam.replies.append(HANG)
    began = time.monotonic()
    result = run("--action", "upgrade")
    took = time.monotonic() - began
    assert result.exit_code == 1
    assert 2 <= took < 4, took
    [line] = result.stderr.splitlines()
    assert line == (f"error: no answer from {FUNCTION!r} within 2 s (its timeout, 1 s, plus 1 s): "
                    "the invocation was sent once and is not sent again; it may still be running "
                    "or may have finished. Read its log group (or invoke with --action current) "
                    "before invoking again")
    time.sleep(1.5)  # a retry, if any, would arrive now
    assert len(lam.invocations) == 1
    assert lam.connections == 2  # one for the configuration, one for the one Invoke


def test_the_read_timeout_is_the_functions_timeout_plus_the_margin(lam: StandIn) -> None:
    lam.timeout = 120
    lam.replies.append(Reply(SUCCESS))
    done = invoking.invoke(FUNCTION, {}, session_=invoking.session())
    assert done.waited_up_to == 120 + invoking.MARGIN_SECONDS
    help_text = CliRunner().invoke(main, ["invoke", "--help"]).output
    assert f"function's timeout plus {invoking.MARGIN_SECONDS} s" in " ".join(help_text.split())
    assert "sent once and never retried" in " ".join(help_text.split())


def test_a_silent_endpoint_ends_at_the_configuration_bound_and_nothing_is_invoked(
        aws_env: pytest.MonkeyPatch) -> None:
    """An endpoint that accepts and never answers (the old client waited 905 s, twice)."""
    with lambda_standin.silent() as listener:
        aws_env.setenv("AWS_ENDPOINT_URL_LAMBDA", listener.endpoint)
        began = time.monotonic()
        result = run()
        took = time.monotonic() - began
        time.sleep(1)  # a retry, if any, would connect now
        connections = listener.connections
    assert result.exit_code == 1
    bound = invoking.CONFIGURATION_TIMEOUT
    assert bound <= took < bound + 2, took
    assert result.stderr.strip() == (
        f"error: Lambda at {listener.endpoint} did not answer within {bound} s when asked for "
        f"the configuration of {FUNCTION!r}: it was not invoked")
    assert connections == 1


def test_nothing_listening_is_not_invoked(aws_env: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aws_env.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{port}")
    result = run()
    assert result.exit_code == 1
    assert f"cannot reach Lambda at http://127.0.0.1:{port} (EndpointConnectionError): " \
           f"{FUNCTION!r} was not invoked" in result.stderr


# --- region and credentials -------------------------------------------------------------


def test_aws_region_is_honoured(lam: StandIn, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_DEFAULT_REGION")
    aws_env.setenv("AWS_REGION", "eu-west-3")
    lam.replies.append(Reply(SUCCESS))
    result = run()
    assert result.exit_code == 0, result.output
    assert lam.regions == ["eu-west-3", "eu-west-3"]


def test_region_order_is_option_then_aws_region_then_aws_default_region(
        lam: StandIn, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_REGION", "eu-west-3")  # AWS_DEFAULT_REGION is sa-east-1
    lam.replies.extend([Reply(SUCCESS), Reply(SUCCESS)])
    assert run().exit_code == 0
    assert run("--region", "us-east-2").exit_code == 0
    assert lam.regions == ["eu-west-3", "eu-west-3", "us-east-2", "us-east-2"]


def test_no_region_says_every_way_to_give_one(lam: StandIn, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_DEFAULT_REGION")
    result = run()
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: no AWS region: pass --region, or set AWS_REGION or "
                                     "AWS_DEFAULT_REGION (or a region in your AWS profile)")
    assert lam.connections == 0


def test_no_credentials_is_named_as_such(lam: StandIn, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    result = run()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot invoke {FUNCTION!r}: no AWS credentials "
                                    "were found: configure them")
    assert lam.connections == 0



# --- what the operator is told -----------------------------------------------------------


def test_an_error_before_the_database_was_read_is_not_called_base(lam: StandIn) -> None:
    """The answer's from/to are empty when the runner never reached the database."""
    lam.replies.append(Reply({"status": "error", "action": "upgrade", "applied": [],
                              "error_code": "SECRET_UNAVAILABLE", "error": "no secret",
                              "from_revision": None, "to_revision": None, "duration_ms": 5}))
    first = run().stdout.splitlines()[0]
    assert first == f"{FUNCTION}: upgrade error (revision unknown) in 5 ms"


def test_a_plan_shows_its_revisions_sql_size_and_findings(lam: StandIn) -> None:
    lam.replies.append(Reply({
        "status": "success", "action": "plan", "from_revision": "020", "to_revision": "021",
        "applied": [], "duration_ms": 80, "sql": "SELECT 1;\n" * 10,
        "pending": [{"revision": "021", "down_revision": "020", "is_head": True,
                     "description": "Stable principal contacts"}],
        "lint": [{"revision": "021", "rule": "prefer-text-field", "line": 3, "message": "m",
                  "waived": True, "reason": "kept exactly"},
                 {"revision": "021", "rule": "require-timeout", "line": 9, "message": "m",
                  "waived": False, "reason": None}]}))
    lines = run("--action", "plan").stdout.splitlines()
    assert lines[1:] == [
        "  pending 1 revision(s):",
        "    021              Stable principal contacts",
        "  sql: 100 bytes (--json prints it)",
        "  lint: 021: prefer-text-field (line 3) waived: kept exactly",
        "  lint: 021: require-timeout (line 9) NOT WAIVED"]


def test_an_upgrade_shows_its_snapshot_restore_point_and_warnings(lam: StandIn) -> None:
    lam.replies.append(Reply({
        **SUCCESS, "action": "upgrade", "snapshot": "alquimista-schema-base-to-017-ab12",
        "restore_point": "2026-12-07T08:00:00+00:00",
        "restorable_until": "2026-12-14T08:00:00+00:00",
        "warnings": ["could not prune snapshot x (AccessDenied)"]}))
    out = run().stdout
    for line in ("  snapshot: alquimista-schema-base-to-017-ab12",
                 "  restore point: 2026-12-07T08:00:00+00:00",
                 "  restorable until: 2026-12-14T08:00:00+00:00",
                 "  warning: could not prune snapshot x (AccessDenied)"):
        assert line in out.splitlines()


def test_mismatches_and_drift_are_listed(lam: StandIn) -> None:
    lam.replies.append(Reply({"status": "error", "action": "verify", "applied": [],
                              "from_revision": "021", "to_revision": "021",
                              "error_code": "CHECKSUM_MISMATCH", "error": "1 edited",
                              "mismatches": ["017: edited since applied"], "duration_ms": 9}))
    assert "  mismatch: 017: edited since applied" in run("--action", "verify").stdout
    lam.replies.append(Reply({"status": "success", "action": "drift", "applied": [],
                              "from_revision": "021", "to_revision": "021", "drift": False,
                              "differences": [], "duration_ms": 9}))
    assert "  drift: none: the schema matches the models" in run("--action", "drift").stdout


def test_a_downgrade_can_be_allowed_and_confirmed(lam: StandIn) -> None:
    lam.replies.append(Reply({**SUCCESS, "action": "downgrade", "applied": []}))
    result = run("--action", "downgrade", "--target", "017", "--allow-downgrade",
                 "--confirm", "017")
    assert result.exit_code == 0, result.output
    assert lam.invocations[0]["event"] == {"action": "downgrade", "target": "017",
                                           "allow_downgrade": True, "confirm": "017"}
