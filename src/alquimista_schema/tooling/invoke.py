"""Invoke the deployed runner (Lambda Invoke, RequestResponse) and read its answer.

Replaces the old PowerShell scripts (``run-migration-017.ps1``, ``list-migrations.ps1``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from alquimista_schema.errors import InvokeFailed


@dataclass(frozen=True)
class Invocation:
    answer: dict[str, Any]
    """The runner's answer (for a function error: Lambda's error payload)."""
    function_error: str | None
    log_tail: str | None

    @property
    def ok(self) -> bool:
        return self.function_error is None and self.answer.get("status") in ("success", "noop")


def lambda_client(session: Any = None) -> Any:
    """Return a Lambda client whose read timeout outlasts a long migration."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(read_timeout=905, connect_timeout=10, retries={"max_attempts": 1})
    try:
        return (session or boto3.session.Session()).client("lambda", config=config)
    except NoRegionError:
        raise InvokeFailed("no AWS region: pass --region or set AWS_REGION") from None


def invoke(function: str, payload: dict[str, Any], *, log_tail: bool = False,
           client: Any = None) -> Invocation:
    """Invoke ``function`` synchronously with ``payload``."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or lambda_client()
    try:
        response = client.invoke(FunctionName=function, InvocationType="RequestResponse",
                                 LogType="Tail" if log_tail else "None",
                                 Payload=json.dumps(payload).encode())
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = {
            "TooManyRequestsException": "throttled: another run is in progress (reserved "
                                        "concurrency 1); wait for it and retry",
            "ResourceNotFoundException": "no such function in this account and region: check "
                                         "--function and AWS_REGION/--region",
            "AccessDeniedException": "your credentials may not invoke it (lambda:InvokeFunction)",
        }.get(code, code or "request refused")
        raise InvokeFailed(f"cannot invoke {function!r}: {hint}") from exc
    except BotoCoreError as exc:
        raise InvokeFailed(f"cannot invoke {function!r}: {exc}") from exc
    raw = response["Payload"].read()
    try:
        answer = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        answer = {"raw": raw.decode(errors="replace")}
    if not isinstance(answer, dict):
        answer = {"value": answer}
    tail = response.get("LogResult")
    return Invocation(answer, response.get("FunctionError"),
                      base64.b64decode(tail).decode(errors="replace") if tail else None)


def summary(function: str, inv: Invocation) -> list[str]:
    """Render an invocation for a person: what was applied, how long, or what to do."""
    a = inv.answer
    if inv.function_error:
        kind = a.get("errorType", "error")
        message = a.get("errorMessage", json.dumps(a))
        return [f"{function}: the function failed ({inv.function_error}, {kind}): {message}",
                "see its CloudWatch logs (or run again with --log-tail)"]
    status = a.get("status", "?")
    action = a.get("action", "?")
    span = f"{a.get('from_revision') or 'base'} -> {a.get('to_revision') or 'base'}"
    lines = [f"{function}: {action} {status} ({span}) in {a.get('duration_ms', '?')} ms"]
    for item in a.get("applied") or []:
        lines.append(f"  {item.get('revision', '?'):<16} {item.get('duration_ms', 0):>9} ms  "
                     f"{item.get('description', '')}")
    if status == "error":
        lines.append(f"  {a.get('error_code', 'ERROR')}: {a.get('error', '')}")
    for key in ("message", "revision"):
        if key in a and status != "error":
            lines.append(f"  {key}: {a[key]}")
    for difference in a.get("differences") or []:
        lines.append(f"  - {difference}")
    return lines
