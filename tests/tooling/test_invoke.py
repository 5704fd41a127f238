"""`alquimista-schema invoke`: Lambda's Invoke through boto3, checked with botocore's Stubber."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from alquimista_schema.cli import main
from alquimista_schema.tooling import invoke as invoking

FUNCTION = "aurora-migrations-runner-dev"
SUCCESS = {"status": "success", "action": "run-migration", "from_revision": None,
           "to_revision": "017", "applied": [
               {"revision": "lead_ingestion", "description": "Lead ingestion schema",
                "duration_ms": 40.1},
               {"revision": "017", "description": "dry_run_log", "duration_ms": 6.2}],
           "migration": "017", "message": "Migration 017 executed successfully",
           "duration_ms": 612.0, "request_id": "r-1"}


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("lambda", region_name="sa-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    monkeypatch.setattr(invoking, "lambda_client", lambda session=None: client)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def payload(body: Any) -> StreamingBody:
    raw = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def expect(stub: Stubber, event: dict[str, Any], body: Any, *, log: str | None = None,
           function_error: str | None = None) -> None:
    response: dict[str, Any] = {"StatusCode": 200, "Payload": payload(body)}
    if log is not None:
        response["LogResult"] = base64.b64encode(log.encode()).decode()
    if function_error:
        response["FunctionError"] = function_error
    stub.add_response("invoke", response, {
        "FunctionName": FUNCTION, "InvocationType": "RequestResponse",
        "LogType": "Tail" if log is not None else "None", "Payload": json.dumps(event).encode()})


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, ["invoke", "--function", FUNCTION, *args])
    print(result.output)
    return result


def test_success_prints_what_was_applied(stub: Stubber) -> None:
    expect(stub, {"action": "run-migration", "target": "017"}, SUCCESS)
    result = run("--action", "run-migration", "--target", "017")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{FUNCTION}: run-migration success (base -> 017) in 612.0 ms"
    assert lines[1].split() == ["lead_ingestion", "40.1", "ms", "Lead", "ingestion", "schema"]
    assert "message: Migration 017 executed successfully" in result.stdout


def test_error_answer_exits_1_and_says_what_to_do(stub: Stubber) -> None:
    answer = {"status": "error", "action": "upgrade", "error_code": "LOCK_TIMEOUT",
              "error": "another migration holds the lock: pid 42", "applied": [],
              "duration_ms": 1000, "from_revision": None, "to_revision": None}
    expect(stub, {}, answer)
    result = run()
    assert result.exit_code == 1
    assert "  LOCK_TIMEOUT: another migration holds the lock: pid 42" in result.stdout


def test_json_prints_the_raw_answer_and_noop_is_success(stub: Stubber) -> None:
    answer = {**SUCCESS, "status": "noop", "applied": []}
    expect(stub, {"action": "upgrade"}, answer)
    result = run("--action", "upgrade", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == answer


def test_function_error_exits_1(stub: Stubber) -> None:
    expect(stub, {}, {"errorMessage": "Task timed out after 300.00 seconds",
                      "errorType": "Sandbox.Timedout"}, function_error="Unhandled")
    result = run()
    assert result.exit_code == 1
    assert "the function failed (Unhandled, Sandbox.Timedout): Task timed out" in result.stdout


def test_log_tail_is_decoded(stub: Stubber) -> None:
    expect(stub, {}, SUCCESS, log='START RequestId: r-1\n{"step": "event.accepted"}\nEND\n')
    result = run("--log-tail")
    assert result.exit_code == 0
    assert '{"step": "event.accepted"}' in result.stderr


def test_payload_file(stub: Stubber, tmp_path: Path) -> None:
    event = {"action": "downgrade", "target": "017", "allow_downgrade": True, "confirm": "017"}
    (tmp_path / "event.json").write_text(json.dumps(event))
    expect(stub, event, {**SUCCESS, "action": "downgrade"})
    assert run("--payload-file", str(tmp_path / "event.json")).exit_code == 0


@pytest.mark.parametrize(("code", "expected"), [
    ("TooManyRequestsException", "throttled"),
    ("ResourceNotFoundException", "no such function"),
    ("AccessDeniedException", "lambda:InvokeFunction"),
])
def test_client_errors_exit_1_with_a_reason(stub: Stubber, code: str, expected: str) -> None:
    stub.add_client_error("invoke", service_error_code=code, http_status_code=429)
    result = run()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot invoke {FUNCTION!r}: ")
    assert expected in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text("{not json")
    assert run("--payload-file", str(tmp_path / "e.json"), "--action", "x").exit_code == 2
    assert run("--payload-file", str(tmp_path / "e.json")).exit_code == 2
    assert CliRunner().invoke(main, ["invoke"]).exit_code == 2
