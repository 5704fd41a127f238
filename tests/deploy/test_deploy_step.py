"""The deploy step (migrateOnDeploy): its resources in the template, its handlers against the
real runner (PostgreSQL, moto), and the CDK provider framework's REAL code (framework.js of
a synth, under node) driving them.

The framework cases rest on stand-ins written here (tests/support/framework_harness.py,
framework_sfn.py): a Lambda API that runs the Python handlers, a Step Functions interpreter
of the waiter's definition from the template (its waits sped up), and CloudFormation's
side (the request, the HTTPS response PUT). The framework's code, the AWS SDK for JS, the
handlers and the runner are real.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import locking
from tests.deploy.test_cdk import (  # noqa: F401 (fixtures)
    FUNCTION,
    Synthesis,
    bundle,
    node,
    synthesized,
)
from tests.support.framework_fixtures import (  # noqa: F401 (fixtures)
    DECIDE,
    POLL,
    RUNNER,
    RUNNER_LOGS,
    Deployment,
    applied_runs,
    deploy_step,
    deployment,
    moto_stack,
    provider,
    sdk,
    statuses,
)
from tests.support.helpers import Invoke, secret_for
from tests.support.revisions import HEAD, REVISIONS
from tests.tooling import lambda_standin
from tests.tooling.lambda_standin import Reply

CHAIN = REVISIONS  # derived from the script directory, never pinned

# --- migrate on deploy, in the template ---------------------------------------------------


@pytest.fixture
def operations(synthesized: dict[str, Synthesis]) -> Synthesis:  # noqa: F811
    return synthesized["operations"]


def logical(each: Synthesis, kind: str, **props: Any) -> str:
    [found] = each.template.find_resources(kind, {"Properties": props} if props else None)
    return str(found)


def test_the_migration_runs_after_the_function_and_again_when_the_bundle_changes(
        operations: Synthesis) -> None:
    runner = logical(operations, FUNCTION, FunctionName=RUNNER)
    [(_, resource)] = operations.template.find_resources(
        "Custom::AlquimistaSchemaMigration").items()
    assert runner in resource["DependsOn"]
    props = resource["Properties"]
    assert props["FunctionName"] == {"Ref": runner}
    assert props["Target"] == "head"
    assert props["BundleHash"] == hashlib.sha256(operations.ctx.bundle.read_bytes()).hexdigest()
    import aws_cdk as cdk  # starts node: only once the fixtures found it

    stack, group = operations.stack, operations.stack.log_group.node.default_child
    assert isinstance(group, cdk.CfnElement)
    assert props["RunnerLogGroup"] == {"Ref": stack.resolve(stack.get_logical_id(group))}
    assert "ServiceToken" in props
    assert operations.stack.migration is not None  # exposed, for other stacks to depend on


def test_the_handlers_are_named_and_log_where_the_framework_says(operations: Synthesis) -> None:
    """framework.js appends `Logs: /aws/lambda/<name>` to a failure: that group exists."""
    for name, handler, timeout in ((DECIDE, "index.on_event", 30),
                                   (POLL, "index.is_complete", 300 + 60)):
        [(_, function)] = operations.template.find_resources(FUNCTION, {"Properties": {
            "FunctionName": name}}).items()
        props = function["Properties"]
        assert (props["Handler"], props["Runtime"], props["Timeout"]) == (
            handler, "python3.12", timeout)
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert operations.json["Resources"][group]["Properties"] == {
            "LogGroupName": f"/aws/lambda/{name}", "RetentionInDays": 30,
            "Tags": operations.json["Resources"][group]["Properties"]["Tags"]}
    operations.template.has_resource_properties(FUNCTION, {
        "FunctionName": POLL, "Environment": {"Variables": {"READ_TIMEOUT_SECONDS": "330"}}})


def test_a_long_env_keeps_the_names_within_lambdas_64_characters(node: str) -> None:  # noqa: F811
    from alquimista_deploy.deploy_step import function_name

    stack: Any = SimpleNamespace(ctx=SimpleNamespace(env="e" * 40))
    names = {function_name(stack, role) for role in ("deploy", "deploy-poll")}
    assert len(names) == 2
    assert all(len(name) == 64 and name.startswith("aurora-migrations-deploy") for name in names)
    assert function_name(SimpleNamespace(ctx=SimpleNamespace(env="dev")),  # type: ignore[arg-type]
                         "deploy-poll") == POLL


def test_only_the_poll_invokes_the_runner_and_only_decide_reads_the_stack(
        operations: Synthesis) -> None:
    runner = logical(operations, FUNCTION, FunctionName=RUNNER)
    policies = {json.dumps(p["PolicyDocument"]["Statement"]): p["Roles"]
                for p in operations.properties("AWS::IAM::Policy")}
    invoke = [{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": [
        {"Fn::GetAtt": [runner, "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [runner, "Arn"]}, ":*"]]}]}]
    describe = [{"Action": "cloudformation:DescribeStacks", "Effect": "Allow",
                 "Resource": {"Ref": "AWS::StackId"}}]
    resources = operations.json["Resources"]

    def role(name: str) -> list[dict[str, str]]:
        function = resources[logical(operations, FUNCTION, FunctionName=name)]
        return [{"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]}]

    assert policies[json.dumps(invoke)] == role(POLL)
    assert policies[json.dumps(describe)] == role(DECIDE)
    runner_grants = [s for s in policies if runner in s and s != json.dumps(invoke)]
    assert runner_grants == []  # nothing else may invoke the runner


def test_the_waiter_polls_every_30_s_until_the_total_timeout(
        operations: Synthesis) -> None:
    [(_, machine)] = operations.template.find_resources(
        "AWS::StepFunctions::StateMachine").items()
    definition = "".join(p if isinstance(p, str) else "" for p in
                         machine["Properties"]["DefinitionString"]["Fn::Join"][1])
    assert '"IntervalSeconds":30,"MaxAttempts":60,"BackoffRate":1' in definition
    assert operations.ctx.migrate_total_timeout == 1800


def test_without_migrate_on_deploy_there_is_no_deploy_step(
        synthesized: dict[str, Synthesis]) -> None:  # noqa: F811
    minimal = synthesized["minimal"]
    minimal.template.resource_count_is("Custom::AlquimistaSchemaMigration", 0)
    minimal.template.resource_count_is("AWS::StepFunctions::StateMachine", 0)
    assert minimal.stack.migration is None


# --- the deploy step's handlers, against the real runner ------------------------------------



def cfn_event(kind: str, **props: str) -> dict[str, Any]:
    return {"RequestType": kind, "StackId": "stack", "ResourceProperties": {
        "FunctionName": "runner", "RunnerLogGroup": RUNNER_LOGS, **props},
            **({"PhysicalResourceId": "migration-runner"} if kind != "Create" else {})}


def never(*args: Any) -> Any:
    raise AssertionError("must not be called")


def test_the_deploy_step_upgrades_then_finds_nothing_to_do(
        invoke: Invoke, empty_url: URL, make_secret: Callable[..., str]) -> None:
    step = deploy_step()
    arn = make_secret(secret_for(empty_url))
    sent: list[dict[str, Any]] = []

    def runner(name: str, payload: dict[str, Any], context: Any) -> dict[str, Any]:
        sent.append(payload)
        return invoke(payload, secret=arn)

    assert step.on_event(cfn_event("Create"), None, describe=never) == {
        "PhysicalResourceId": "migration-runner"}  # decided at once: nothing run
    created = step.is_complete(cfn_event("Create", Target="head"), None, invoke=runner)
    assert created["IsComplete"] is True
    assert created["Data"]["Status"] == "success"
    assert created["Data"]["Applied"].split(",") == CHAIN
    updated = step.is_complete(cfn_event("Update", Target="head"), None, invoke=runner)
    assert (updated["IsComplete"], updated["Data"]["Status"]) == (True, "noop")
    assert sent == [{"action": "upgrade", "target": "head"}] * 2


def test_a_migration_stopped_by_its_deadline_resumes_on_the_next_poll(
        invoke: Invoke, empty_url: URL, make_secret: Callable[..., str]) -> None:
    step = deploy_step()
    arn = make_secret(secret_for(empty_url))
    short = step.is_complete(cfn_event("Create"), None, invoke=lambda name, payload, ctx:
                             invoke(payload, secret=arn, remaining_ms=5_000))
    assert short == {"IsComplete": False}  # DEADLINE: not finished, not failed
    assert command.current(empty_url) is None
    done = step.is_complete(cfn_event("Create"), None,
                            invoke=lambda name, payload, ctx: invoke(payload, secret=arn))
    assert (done["IsComplete"], done["Data"]["ToRevision"]) == (True, HEAD)


def test_an_error_answer_fails_the_deploy_with_its_code_and_log_groups(
        invoke: Invoke, legacy_url: URL, make_secret: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", POLL)
    arn = make_secret(secret_for(legacy_url))
    with pytest.raises(RuntimeError) as failed:
        deploy_step().is_complete(cfn_event("Create"), None,
                                  invoke=lambda name, payload, ctx: invoke(payload, secret=arn))
    assert re.match(r"the migration failed: NOT_ADOPTED: the database holds the package's "
                    r"objects", str(failed.value))
    assert str(failed.value).endswith(f" (the runner's lines are in log group {RUNNER_LOGS}; "
                                      f"this step's in /aws/lambda/{POLL})")
    assert command.current(legacy_url) is None  # nothing applied


def test_delete_never_downgrades() -> None:
    step = deploy_step()
    assert step.on_event(cfn_event("Delete"), None, describe=never) == {
        "PhysicalResourceId": "migration-runner"}
    assert step.is_complete(cfn_event("Delete"), None, invoke=never) == {"IsComplete": True}


@pytest.mark.parametrize(("status", "rolls_back"), [
    ("UPDATE_ROLLBACK_IN_PROGRESS", True), ("UPDATE_IN_PROGRESS", False)])
def test_an_update_during_a_rollback_is_done_at_once(status: str, rolls_back: bool,
                                                     moto_stack: Callable[[str], str]  # noqa: F811
                                                     ) -> None:
    step = deploy_step()
    event = {**cfn_event("Update"), "StackId": moto_stack(status)}
    decided = step.on_event(event, None)
    assert ("Data" in decided) is rolls_back
    if rolls_back:
        assert decided["Data"]["Status"] == "rollback"
        assert "the database stays where it is" in decided["Data"]["Message"]
        merged = {**event, **decided}  # as framework.js hands it to isComplete
        assert step.is_complete(merged, None, invoke=never) == {"IsComplete": True}


@pytest.mark.parametrize(("reply", "answer"), [
    (Reply({"errorMessage": "Task timed out after 300.00 seconds"}, function_error="Unhandled"),
     "the runner failed (Unhandled): "),
    (Reply({"message": "Rate exceeded"}, status=429, error_type="TooManyRequestsException"),
     {"IsComplete": False}),
])
def test_a_function_error_fails_it_a_throttle_polls_again_each_sent_once(
        reply: Reply, answer: Any, monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    with lambda_standin.serve() as standin:
        standin.replies.append(reply)
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", standin.endpoint)
        if isinstance(answer, str):
            with pytest.raises(RuntimeError, match=re.escape(answer)):
                deploy_step().is_complete(cfn_event("Create"), None)
        else:
            assert deploy_step().is_complete(cfn_event("Create"), None) == answer
        assert len(standin.invocations) == 1  # the next poll is the only retry
        assert standin.invocations[0]["event"] == {"action": "upgrade", "target": "head"}


def test_the_read_waits_past_the_runner_within_the_handlers_own_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    step = deploy_step()
    monkeypatch.setenv("READ_TIMEOUT_SECONDS", "330")
    assert step.read_timeout(SimpleNamespace(get_remaining_time_in_millis=lambda: 360_000)) \
        == 330
    assert step.read_timeout(SimpleNamespace(get_remaining_time_in_millis=lambda: 100_000)) \
        == 90


def test_a_concurrent_second_poll_applies_nothing_twice(
        invoke: Invoke, empty_url: URL, make_secret: Callable[..., str]) -> None:
    step = deploy_step()
    arn = make_secret(secret_for(empty_url))
    start = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def poll() -> None:
        start.wait(10)
        results.append(step.is_complete(cfn_event("Create"), None, invoke=lambda n, p, c:
                                        invoke(p, secret=arn)))

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(r.get("Data", {}).get("Status", "not yet") for r in results) in (
        ["noop", "success"], ["not yet", "success"])
    assert applied_runs(empty_url) == [CHAIN]


# --- the provider framework's real code, under node ----------------------------------------

def test_framework_an_invoke_retried_after_a_lost_answer_applies_once(
        deployment: Deployment) -> None:  # noqa: F811
    """(a) The first three answers of the poll are lost (the SDK's three attempts): outbound.js
    waits for the function to be active and invokes it again: four polls, one migration."""
    harness = deployment.harness
    harness.lambda_api.lose[POLL] = 3
    response = harness.deploy(harness.request("Create", deployment.moto_stack(
        "CREATE_IN_PROGRESS"), deployment.props))
    assert response["Status"] == "SUCCESS", response
    assert statuses(harness.lambda_api.of(RUNNER)) == ["success", "noop", "noop", "noop"]
    assert harness.lambda_api.get_function >= 1  # outbound.js's waitUntilFunctionActiveV2
    assert response["Data"]["ToRevision"] == HEAD
    assert applied_runs(deployment.url) == [CHAIN]


def test_framework_polls_while_another_run_holds_the_lock(deployment: Deployment) -> None:  # noqa: F811
    """(b) LOCK_TIMEOUT is "not yet": the waiter polls again; released, the next poll runs."""
    harness = deployment.harness
    with connect(deployment.url, application_name="holder-under-test") as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locking.LOCK_KEY})
        holder.commit()
        runner, _ = harness.lambda_api.handlers[RUNNER]

        def release_after_first(event: Any, context: Any) -> Any:
            answer = runner(event, context)
            if answer.get("error_code") == "LOCK_TIMEOUT":
                holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": locking.LOCK_KEY})
                holder.commit()
            return answer

        harness.lambda_api.handlers[RUNNER] = (release_after_first, 300)
        response = harness.deploy(harness.request("Create", deployment.moto_stack(
            "CREATE_IN_PROGRESS"), deployment.props))
    assert response["Status"] == "SUCCESS", response
    assert statuses(harness.lambda_api.of(RUNNER)) == ["LOCK_TIMEOUT", "success"]
    assert [s for s, _ in harness.sfn.executions[0].steps] == ["framework-isComplete-task"] * 2
    assert (response["Data"]["Status"], response["Data"]["Applied"].split(",")) == (
        "success", CHAIN)


def test_framework_a_rollback_update_succeeds_at_once(deployment: Deployment) -> None:  # noqa: F811
    """(c) The stack rolls back (moto's DescribeStacks says so): SUCCESS, no runner call."""
    harness = deployment.harness
    began = time.monotonic()
    response = harness.deploy(harness.request(
        "Update", deployment.moto_stack("UPDATE_ROLLBACK_IN_PROGRESS"),
        {**deployment.props, "BundleHash": "b0"}, old={**deployment.props}))
    assert response["Status"] == "SUCCESS", response
    assert response["Reason"] == "SUCCESS"  # fixed by the framework: the Data says why
    assert response["Data"]["Status"] == "rollback"
    assert harness.lambda_api.of(RUNNER) == []
    assert command.current(deployment.url) is None
    assert time.monotonic() - began < 30


def test_framework_times_out_when_the_lock_is_never_released(deployment: Deployment) -> None:  # noqa: F811
    """(d) totalTimeout 60 s, 30 s apart: three polls, then FAILED "Operation timed out"."""
    harness = deployment.harness
    with connect(deployment.url) as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locking.LOCK_KEY})
        holder.commit()
        response = harness.deploy(harness.request("Create", deployment.moto_stack(
            "CREATE_IN_PROGRESS"), deployment.props))
    assert (response["Status"], response["Reason"]) == ("FAILED", "Operation timed out")
    assert statuses(harness.lambda_api.of(RUNNER)) == ["LOCK_TIMEOUT"] * 3
    assert [s for s, _ in harness.sfn.executions[0].steps] == [
        "framework-isComplete-task"] * 3 + ["framework-onTimeout-task"]
    assert command.current(deployment.url) is None


def test_framework_an_error_answer_fails_naming_the_log_groups(deployment: Deployment,  # noqa: F811
                                                               legacy_url: URL,
                                                               invoke: Invoke,
                                                               make_secret: Callable[..., str]
                                                               ) -> None:
    harness = deployment.harness
    arn = make_secret(secret_for(legacy_url))
    harness.lambda_api.handlers[RUNNER] = (lambda event, ctx: invoke(event, secret=arn), 300)
    response = harness.deploy(harness.request("Create", deployment.moto_stack(
        "CREATE_IN_PROGRESS"), deployment.props))
    assert response["Status"] == "FAILED"
    # framework.js answers the error's stack: its message, then the framework's frames
    assert response["Reason"].startswith("Error: the migration failed: NOT_ADOPTED: ")
    assert f"log group {RUNNER_LOGS}; this step's in /aws/lambda/{POLL})" in response["Reason"]
    assert f"\n\nLogs: /aws/lambda/{POLL}\n" in response["Reason"]  # framework.js's, now true
    assert statuses(harness.lambda_api.of(RUNNER)) == ["NOT_ADOPTED"]
