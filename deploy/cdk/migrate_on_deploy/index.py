"""The deploy step: upgrade the database while CloudFormation waits, resumably, idempotently.

The user handlers of a custom resource of the CDK provider framework, with its completion
polling (deploy_step.py). ``on_event`` decides at once and migrates nothing: Delete does
nothing (a rollback never downgrades), and an Update sent while the stack rolls back
(UPDATE_ROLLBACK_IN_PROGRESS: CloudFormation sends the OLD properties, aws-cdk#17040)
succeeds at once, leaving the database at its revision, because upgrading then would re-run
the migration that failed, or meet a database ahead of the old bundle.

``is_complete`` is called by the framework's waiter every query interval; it invokes the
runner synchronously once per call with an upgrade to the target. Success or noop there is
complete; an answer that says "not finished yet" (LOCK_TIMEOUT: another run holds the lock;
DEADLINE: the runner stopped between revisions, keeping what it committed;
SNAPSHOT_PENDING: the snapshot before the upgrade is still being made), a throttled Invoke,
or an answer that does not come before the read timeout (the runner goes on), is "not
yet": the waiter polls again, until the framework's total timeout answers FAILED. Anything
else raises, which fails the deployment with the runner's error_code and message and the
log groups that hold the lines.

The framework may call either handler more than once for one event (its outbound.js invokes
again after any error, with the SDK's own retries), so nothing here counts on being called
once: the runner's migration lock and its upgrade to a target make a second call a noop.
Standard library and boto3 only (the Lambda runtime's).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

ROLLING_BACK = "UPDATE_ROLLBACK_IN_PROGRESS"
NOT_FINISHED = frozenset({"LOCK_TIMEOUT", "DEADLINE", "SNAPSHOT_PENDING"})
"""The runner's error codes that mean "try again later": nothing half-done, nothing lost."""
THROTTLED = frozenset({"TooManyRequestsException"})
DEFAULT_READ_TIMEOUT = 930  # the runner's 900 s at most, plus a margin (set by deploy_step)
KEEP_SECONDS = 10  # of the handler's own time, kept to answer after a read timeout

log = logging.getLogger("migrate_on_deploy")
log.setLevel(logging.INFO)


class NotYet(Exception):
    """The runner could not finish in this call; the next poll goes on."""


class RunnerFailed(Exception):
    """The runner's invocation failed (FunctionError: an unhandled error or its timeout)."""


def resource_id(event: dict[str, Any]) -> str:
    """The physical id, the same for every event of one resource."""
    name = event.get("ResourceProperties", {}).get("FunctionName", "runner")
    return str(event.get("PhysicalResourceId") or f"migration-{name}")


def on_event(event: dict[str, Any], context: Any, describe: Any = None) -> dict[str, Any]:
    """Decide at once: Create and Update go on to isComplete, except an Update during a
    rollback, which is answered there as done (Data says so); Delete does nothing."""
    answer: dict[str, Any] = {"PhysicalResourceId": resource_id(event)}
    if event.get("RequestType") == "Update" and rolling_back(event, describe):
        stays = event.get("OldResourceProperties", {}).get("Target") or "its revision"
        message = (f"the stack is rolling back ({ROLLING_BACK}): the database stays where it "
                   f"is (never upgraded, never downgraded by a rollback; target was {stays})")
        log.warning(message)
        answer["Data"] = {"Status": "rollback", "Message": message}
    return answer


def rolling_back(event: dict[str, Any], describe: Any = None) -> bool:
    """Is the event's stack rolling an update back? (cloudformation:DescribeStacks)."""
    if describe is None:
        import boto3

        describe = boto3.client("cloudformation").describe_stacks
    [stack] = describe(StackName=event["StackId"])["Stacks"]
    return bool(stack["StackStatus"] == ROLLING_BACK)


def is_complete(event: dict[str, Any], context: Any, invoke: Any = None) -> dict[str, Any]:
    """One poll: upgrade to the target with one runner invocation, or say "not yet"."""
    if event.get("RequestType") == "Delete" or \
            event.get("Data", {}).get("Status") == "rollback":
        return {"IsComplete": True}  # decided by on_event: nothing to run
    props = event.get("ResourceProperties", {})
    payload = {"action": "upgrade", "target": props.get("Target") or "head"}
    try:
        answer = (invoke or invoke_runner)(props["FunctionName"], payload, context)
    except NotYet as exc:
        log.warning("not finished yet, polling again: %s", exc)
        return {"IsComplete": False}
    except RunnerFailed as exc:
        raise RuntimeError(f"the migration failed: {exc}{where(props)}") from exc
    if not isinstance(answer, dict):
        raise RuntimeError(f"the migration failed: the runner answered {answer!r:.500}"
                           f"{where(props)}")
    if answer.get("status") in ("success", "noop"):
        log.info("the database is at %s: %s", answer.get("to_revision"), answer["status"])
        return {"IsComplete": True, "Data": data(answer)}
    code = answer.get("error_code", "ERROR")
    if code in NOT_FINISHED:
        log.warning("not finished yet (%s), polling again: %s", code, answer.get("error"))
        return {"IsComplete": False}
    raise RuntimeError(f"the migration failed: {code}: {answer.get('error', answer)}"[:2500]
                       + where(props))


def data(answer: dict[str, Any]) -> dict[str, str]:
    """The resource's attributes (Fn::GetAtt) from the runner's answer."""
    found = {"Status": answer["status"], "FromRevision": str(answer.get("from_revision")),
             "ToRevision": str(answer.get("to_revision")),
             "Applied": ",".join(a["revision"] for a in answer.get("applied", [])),
             "Snapshot": str(answer.get("snapshot") or "")}
    if answer.get("restore_point"):
        found["RestorePoint"] = str(answer["restore_point"])
    return found


def where(props: dict[str, Any]) -> str:
    """Which log groups hold the lines: the runner's (a property) and this step's."""
    runner = props.get("RunnerLogGroup") or f"/aws/lambda/{props.get('FunctionName')}"
    own = f"/aws/lambda/{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'the deploy step')}"
    return f" (the runner's lines are in log group {runner}; this step's in {own})"


def invoke_runner(function_name: str, payload: dict[str, Any], context: Any) -> Any:
    """Invoke the runner once and wait for its answer (not retried by the SDK: the next poll
    is the retry); raise NotYet when throttled or when the answer does not come in time."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, ReadTimeoutError

    client = boto3.client("lambda", config=Config(
        connect_timeout=10, read_timeout=read_timeout(context),
        retries={"total_max_attempts": 1}))
    try:
        response = client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                 Payload=json.dumps(payload).encode())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in THROTTLED:
            raise NotYet(f"the runner's Invoke was throttled: {exc}") from exc
        raise
    except ReadTimeoutError as exc:  # the runner goes on, holding the lock: poll again
        raise NotYet(f"no answer from the runner within {read_timeout(context)} s") from exc
    body = response["Payload"].read().decode("utf-8", "replace")
    if response.get("FunctionError"):
        raise RunnerFailed(f"the runner failed ({response['FunctionError']}): {body[:2000]}")
    return json.loads(body)


def read_timeout(context: Any) -> int:
    """The runner's timeout plus a margin, within what is left of this handler's own time."""
    wanted = int(os.environ.get("READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT))
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return wanted
    return max(1, min(wanted, int(remaining() / 1000) - KEEP_SECONDS))
