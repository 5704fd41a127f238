"""The deploy step (migrateOnDeploy): its resources in the template, and its handler run
against the real runner (PostgreSQL, moto)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.engine import URL

from alquimista_schema import command
from tests.deploy.test_cdk import (  # noqa: F401 (fixtures)
    FUNCTION,
    Synthesis,
    bundle,
    node,
    synthesized,
)
from tests.deploy.values import ROOT
from tests.support.helpers import Invoke, secret_for
from tests.tooling import lambda_standin
from tests.tooling.lambda_standin import Reply

# --- migrate on deploy, in the template ---------------------------------------------------


@pytest.fixture
def operations(synthesized: dict[str, Synthesis]) -> Synthesis:  # noqa: F811
    return synthesized["operations"]


def logical(each: Synthesis, kind: str, **props: Any) -> str:
    [found] = each.template.find_resources(kind, {"Properties": props} if props else None)
    return str(found)


def test_the_migration_runs_after_the_function_and_again_when_the_bundle_changes(
        operations: Synthesis) -> None:
    runner = logical(operations, FUNCTION, FunctionName="aurora-migrations-runner-dev")
    [(_, resource)] = operations.template.find_resources(
        "Custom::AlquimistaSchemaMigration").items()
    assert runner in resource["DependsOn"]
    props = resource["Properties"]
    assert props["FunctionName"] == {"Ref": runner}
    assert props["Target"] == "head"
    assert props["BundleHash"] == hashlib.sha256(operations.ctx.bundle.read_bytes()).hexdigest()
    assert "ServiceToken" in props
    operations.template.has_resource_properties(FUNCTION, {
        "Handler": "index.on_event", "Runtime": "python3.12", "Timeout": 900})
    # the deploy step may invoke the runner, and nothing else
    operations.template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {
        "Statement": [{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": [
            {"Fn::GetAtt": [runner, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [runner, "Arn"]}, ":*"]]}]}]}})
    assert operations.stack.migration is not None  # exposed, for other stacks to depend on


def test_without_migrate_on_deploy_there_is_no_deploy_step(
        synthesized: dict[str, Synthesis]) -> None:  # noqa: F811
    minimal = synthesized["minimal"]
    minimal.template.resource_count_is("Custom::AlquimistaSchemaMigration", 0)
    assert minimal.stack.migration is None


# --- the deploy step's handler, against the real runner ------------------------------------


def deploy_step() -> ModuleType:
    path = ROOT / "deploy" / "cdk" / "migrate_on_deploy" / "index.py"
    spec = importlib.util.spec_from_file_location("migrate_on_deploy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cfn_event(kind: str, **props: str) -> dict[str, Any]:
    return {"RequestType": kind, "ResourceProperties": {"FunctionName": "runner", **props},
            **({"PhysicalResourceId": "migration-runner"} if kind != "Create" else {})}


def test_the_deploy_step_upgrades_then_finds_nothing_to_do(
        invoke: Invoke, empty_url: URL, make_secret: Callable[..., str]) -> None:
    step = deploy_step()
    arn = make_secret(secret_for(empty_url))
    sent: list[dict[str, Any]] = []

    def runner(name: str, payload: dict[str, Any]) -> dict[str, Any]:
        sent.append(payload)
        return invoke(payload, secret=arn)

    created = step.on_event(cfn_event("Create", Target="head"), None, invoke=runner)
    assert created["PhysicalResourceId"] == "migration-runner"
    assert created["Data"]["Status"] == "success"
    assert created["Data"]["Applied"].split(",")[-1] == "021"
    updated = step.on_event(cfn_event("Update", Target="head"), None, invoke=runner)
    assert (updated["PhysicalResourceId"], updated["Data"]["Status"]) == (
        "migration-runner", "noop")
    assert sent == [{"action": "upgrade", "target": "head"}] * 2


def test_an_error_answer_fails_the_deploy_with_its_code(
        invoke: Invoke, legacy_url: URL, make_secret: Callable[..., str]) -> None:
    step = deploy_step()
    arn = make_secret(secret_for(legacy_url))
    with pytest.raises(RuntimeError, match=r"the migration failed: NOT_ADOPTED: the database "
                                           r"holds the package's objects"):
        step.on_event(cfn_event("Create"), None,
                      invoke=lambda name, payload: invoke(payload, secret=arn))
    assert command.current(legacy_url) is None  # nothing applied


def test_delete_never_downgrades() -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("Delete must not invoke the runner")

    answer = deploy_step().on_event(cfn_event("Delete"), None, invoke=refuse)
    assert answer == {"PhysicalResourceId": "migration-runner"}


@pytest.mark.parametrize(("reply", "said"), [
    (Reply({"errorMessage": "Task timed out after 300.00 seconds"}, function_error="Unhandled"),
     "the runner failed (Unhandled): "),
    (Reply({"message": "Rate exceeded"}, status=429, error_type="TooManyRequestsException"),
     "TooManyRequestsException"),
])
def test_a_function_error_or_a_throttle_fails_it_and_is_not_sent_twice(
        reply: Reply, said: str, monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    with lambda_standin.serve() as standin:
        standin.replies.append(reply)
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", standin.endpoint)
        with pytest.raises(Exception, match=re.escape(said)):
            deploy_step().on_event(cfn_event("Create"), None)
        assert len(standin.invocations) == 1
        assert standin.invocations[0]["event"] == {"action": "upgrade", "target": "head"}
