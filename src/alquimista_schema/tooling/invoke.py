"""Invoke the deployed runner (Lambda Invoke, RequestResponse) and read its answer.

Replaces the old PowerShell scripts (``run-migration-017.ps1``, ``list-migrations.ps1``).

Bounded and sent once: the function's own timeout is read first (GetFunctionConfiguration,
a short call), the Invoke waits that long plus MARGIN_SECONDS, and nothing is retried,
because an Invoke whose answer was lost may have run (a migration is not sent twice).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alquimista_schema.errors import InvokeFailed

CONNECT_TIMEOUT = 10
CONFIGURATION_TIMEOUT = 5
"""Read timeout of GetFunctionConfiguration (the control plane answers in milliseconds)."""
MARGIN_SECONDS = 30
"""Waited past the function's timeout: its cold start (Lambda's init phase, up to 10 s)
and the network, so a function that uses all its time is still heard."""
LAMBDA_MAX_TIMEOUT = 900
"""Lambda's longest timeout: waited for when the function's own cannot be read."""
MAX_ANSWER_BYTES = 6 * 1024 * 1024 + 1024
"""Lambda's limit on a synchronous answer (6 MB), plus room for the envelope."""
NO_CREDENTIALS = ("no AWS credentials were found: configure them (AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with `aws configure` or `aws sso "
                  "login`)")


@dataclass(frozen=True)
class Invocation:
    answer: dict[str, Any]
    """The runner's answer (for a function error: Lambda's error payload)."""
    function_error: str | None
    log_tail: str | None
    waited_up_to: float = 0.0
    """The read timeout the Invoke had: the function's timeout plus the margin."""

    @property
    def ok(self) -> bool:
        return self.function_error is None and self.answer.get("status") in ("success", "noop")


def session(region: str | None = None) -> Any:
    """A boto3 session with a region: ``region``, else AWS_REGION, else boto3's own
    (AWS_DEFAULT_REGION, the profile's), as the AWS CLI orders them."""
    import boto3

    chosen = region or os.environ.get("AWS_REGION", "").strip() or None
    found = boto3.session.Session(region_name=chosen)
    if not found.region_name:
        raise InvokeFailed("no AWS region: pass --region, or set AWS_REGION or "
                           "AWS_DEFAULT_REGION (or a region in your AWS profile)")
    return found


def lambda_client(session_: Any = None, *, read_timeout: float = CONFIGURATION_TIMEOUT) -> Any:
    """A Lambda client that waits ``read_timeout`` for an answer and never retries.

    ``total_max_attempts`` 1: botocore's retry of a timed-out Invoke would run the
    migration a second time. An explicit Config wins over AWS_MAX_ATTEMPTS.
    """
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=read_timeout,
                    retries={"total_max_attempts": 1, "mode": "standard"})
    return (session_ or session()).client("lambda", config=config)


def function_timeout(function: str, client: Any,
                     log: Callable[[str], None] = lambda _: None) -> int:
    """The function's configured timeout in seconds (Lambda's maximum when it may not be
    read). Nothing is invoked here; a function that does not exist stops the run."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        configuration = client.get_function_configuration(FunctionName=function)
    except ClientError as exc:
        if _code(exc) != "AccessDeniedException":
            raise InvokeFailed(f"cannot invoke {function!r}: {_hint(exc)}") from exc
        log(f"cannot read the configuration of {function!r} (lambda:GetFunctionConfiguration "
            f"denied): waiting up to Lambda's maximum, {LAMBDA_MAX_TIMEOUT} s")
        return LAMBDA_MAX_TIMEOUT
    except BotoCoreError as exc:
        raise _transport(function, exc, client, sent=False) from exc
    timeout = configuration.get("Timeout")
    return timeout if isinstance(timeout, int) and 0 < timeout <= LAMBDA_MAX_TIMEOUT \
        else LAMBDA_MAX_TIMEOUT


def invoke(function: str, payload: dict[str, Any], *, log_tail: bool = False,
           session_: Any = None, margin: float | None = None,
           log: Callable[[str], None] = lambda _: None) -> Invocation:
    """Invoke ``function`` synchronously with ``payload``, once.

    The answer is awaited the function's timeout plus ``margin`` (MARGIN_SECONDS); a
    lost answer is reported as such (the invocation may have run), never retried.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    session_ = session_ or session()
    timeout = function_timeout(function, lambda_client(session_), log)
    waited = timeout + (MARGIN_SECONDS if margin is None else margin)
    client = lambda_client(session_, read_timeout=waited)
    try:
        response = client.invoke(FunctionName=function, InvocationType="RequestResponse",
                                 LogType="Tail" if log_tail else "None",
                                 Payload=json.dumps(payload).encode())
        raw = response["Payload"].read(MAX_ANSWER_BYTES + 1)
    except ClientError as exc:
        raise InvokeFailed(f"cannot invoke {function!r}: {_hint(exc)}") from exc
    except BotoCoreError as exc:
        raise _transport(function, exc, client, sent=True, waited=waited,
                         timeout=timeout) from exc
    if len(raw) > MAX_ANSWER_BYTES:
        raise InvokeFailed(f"{function!r} answered more than Lambda's 6 MB: not its answer "
                           "(check the endpoint, AWS_ENDPOINT_URL_LAMBDA)")
    try:
        answer = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, RecursionError):
        answer = {"raw": raw[:2000].decode(errors="replace")}
    if not isinstance(answer, dict):
        answer = {"value": answer}
    tail = response.get("LogResult")
    return Invocation(answer, response.get("FunctionError"),
                      base64.b64decode(tail).decode(errors="replace") if tail else None,
                      waited)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _hint(exc: Any) -> str:
    code = _code(exc)
    return {
        "TooManyRequestsException": "throttled: another run is in progress (reserved "
                                    "concurrency 1); wait for it and retry",
        "ResourceNotFoundException": "no such function in this account and region: check "
                                     "--function and --region/AWS_REGION",
        "AccessDeniedException": "your credentials may not invoke it (lambda:InvokeFunction)",
        "UnrecognizedClientException": "the AWS credentials are not valid (expired?)",
    }.get(code, code or "request refused")


def _transport(function: str, exc: Exception, client: Any, *, sent: bool,
               waited: float = 0.0, timeout: int = 0) -> InvokeFailed:
    """Say what a failure below the API means: was the Invoke sent, may it have run?"""
    from botocore import exceptions as boto

    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", "Lambda")
    if isinstance(exc, boto.NoCredentialsError):
        return InvokeFailed(f"cannot invoke {function!r}: {NO_CREDENTIALS}")
    if isinstance(exc, boto.ConnectionError):  # no connection: no request went out
        return InvokeFailed(f"cannot reach Lambda at {endpoint} ({type(exc).__name__}): "
                            f"{function!r} was not invoked; check the network and the region")
    if not sent:
        what = (f"did not answer within {CONFIGURATION_TIMEOUT} s" if isinstance(
            exc, boto.ReadTimeoutError) else f"failed ({type(exc).__name__}: {exc})")
        return InvokeFailed(f"Lambda at {endpoint} {what} when asked for the configuration "
                            f"of {function!r}: it was not invoked")
    if isinstance(exc, boto.ReadTimeoutError):
        return InvokeFailed(
            f"no answer from {function!r} within {waited:.0f} s (its timeout, {timeout} s, "
            f"plus {waited - timeout:.0f} s): the invocation was sent once and is not sent "
            "again; it may still be running or may have finished. Read its log group (or "
            "invoke with --action current) before invoking again")
    if isinstance(exc, boto.HTTPClientError):
        return InvokeFailed(
            f"the connection to Lambda broke after {function!r} was invoked "
            f"({type(exc).__name__}): it is not invoked again; it may have run. Read its "
            "log group (or invoke with --action current) before invoking again")
    return InvokeFailed(f"cannot invoke {function!r}: {type(exc).__name__}: {exc}")


def span(answer: dict[str, Any]) -> str:
    """``FROM -> TO`` as the answer says it; ``revision unknown`` when an error came before
    the database was read (its from/to are then empty, which is not "base")."""
    moved = answer.get("applied") or answer.get("to_revision") or answer.get("from_revision")
    if answer.get("status") == "error" and not moved:
        return "revision unknown"
    return f"{answer.get('from_revision') or 'base'} -> {answer.get('to_revision') or 'base'}"


def summary(function: str, inv: Invocation) -> list[str]:
    """Render an invocation for a person: what was applied, how long, or what to do, and
    everything the answer carries besides (the plan, the snapshot, warnings, findings)."""
    a = inv.answer
    if inv.function_error:
        kind = a.get("errorType", "error")
        message = a.get("errorMessage", json.dumps(a))
        return [f"{function}: the function failed ({inv.function_error}, {kind}): {message}",
                "see its CloudWatch logs (or run again with --log-tail)"]
    status = a.get("status", "?")
    lines = [f"{function}: {a.get('action', '?')} {status} ({span(a)}) in "
             f"{a.get('duration_ms', '?')} ms"]
    for item in a.get("applied") or []:
        lines.append(f"  {item.get('revision', '?'):<16} {item.get('duration_ms', 0):>9} ms  "
                     f"{item.get('description', '')}")
    if status == "error":
        lines.append(f"  {a.get('error_code', 'ERROR')}: {a.get('error', '')}")
    for key, render in _PARTS:
        if key in a and a[key] not in (None, [], "") and (status != "error" or key not in _QUIET):
            lines.extend(render(a[key]))
    return lines


def _pending(items: list[dict[str, Any]]) -> list[str]:
    return [f"  pending {len(items)} revision(s):"] + [
        f"    {p.get('revision', '?'):<16} {p.get('description', '')}" for p in items]


def _findings(items: list[dict[str, Any]]) -> list[str]:
    return [f"  lint: {f.get('revision', '?')}: {f.get('rule', '?')} (line {f.get('line', '?')})"
            f"{' waived: ' + str(f.get('reason')) if f.get('waived') else ' NOT WAIVED'}"
            for f in items]


def _listed(label: str) -> Callable[[list[Any]], list[str]]:
    return lambda items: [f"  {label}: {item}" for item in items]


# What an answer may carry besides what was applied, each rendered in its own way, in
# this order (a table, not a chain of ifs); _QUIET are not repeated under an error.
_PARTS: list[tuple[str, Callable[[Any], list[str]]]] = [
    ("message", lambda v: [f"  message: {v}"]),
    ("revision", lambda v: [f"  revision: {v}"]),
    ("pending", _pending),
    ("sql", lambda v: [f"  sql: {len(str(v).encode()):,} bytes (--json prints it)"]),
    ("lint", _findings),
    ("snapshot", lambda v: [f"  snapshot: {v}"]),
    ("restore_point", lambda v: [f"  restore point: {v}"]),
    ("restorable_until", lambda v: [f"  restorable until: {v}"]),
    ("warnings", _listed("warning")),
    ("mismatches", _listed("mismatch")),
    ("drift", lambda v: ["  drift: " + ("the schema differs from the models" if v else
                                        "none: the schema matches the models")]),
    ("differences", _listed("difference")),
    ("skipped", lambda v: []),
]
_QUIET = {"message", "revision"}
