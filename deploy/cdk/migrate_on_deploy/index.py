"""The deploy step: upgrade the database while CloudFormation waits, failing it on error.

The onEvent handler of a custom resource (the CDK provider framework). On Create and
Update it invokes the runner synchronously (RequestResponse) with an upgrade event, and
raises, which fails the deployment with the runner's error_code and message in the
stack's events, when the runner answers ``status: error``, fails itself (FunctionError:
an unhandled error or its timeout) or is throttled. It is never retried: the migration
event is sent once. On Delete it does nothing: a rollback never downgrades the database.
Standard library and boto3 only (the Lambda runtime's).
"""

from __future__ import annotations

import json
from typing import Any

# The runner's own timeout is at most 900 s; the read waits for it, plus a margin.
READ_TIMEOUT_SECONDS = 930


def on_event(event: dict[str, Any], context: Any, invoke: Any = None) -> dict[str, Any]:
    """Answer CloudFormation: upgrade on Create and Update, nothing on Delete."""
    props = event.get("ResourceProperties", {})
    resource_id = f"migration-{props.get('FunctionName', 'runner')}"
    if event.get("RequestType") == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or resource_id}
    payload = {"action": "upgrade", "target": props.get("Target") or "head"}
    answer = (invoke or invoke_runner)(props["FunctionName"], payload)
    if not isinstance(answer, dict) or answer.get("status") not in ("success", "noop"):
        code = answer.get("error_code", "ERROR") if isinstance(answer, dict) else "ERROR"
        said = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise RuntimeError(f"the migration failed: {code}: {said}"[:3000])
    return {"PhysicalResourceId": resource_id, "Data": {
        "Status": answer["status"], "FromRevision": str(answer.get("from_revision")),
        "ToRevision": str(answer.get("to_revision")),
        "Applied": ",".join(a["revision"] for a in answer.get("applied", [])),
        "Snapshot": str(answer.get("snapshot") or "")}}


def invoke_runner(function_name: str, payload: dict[str, Any]) -> Any:
    """Invoke the runner once and wait for its answer; raise if it failed or was throttled."""
    import boto3
    from botocore.config import Config

    client = boto3.client("lambda", config=Config(
        connect_timeout=10, read_timeout=READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1}))  # never a second Invoke of a migration
    response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                             Payload=json.dumps(payload).encode())
    body = response["Payload"].read().decode("utf-8", "replace")
    if response.get("FunctionError"):
        raise RuntimeError(f"the runner failed ({response['FunctionError']}): {body[:2000]}")
    return json.loads(body)
