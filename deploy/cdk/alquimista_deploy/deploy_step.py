"""The upgrade as a step of the deployment (``migrateOnDeploy``): a custom resource of the
CDK provider framework whose handler (migrate_on_deploy/index.py) invokes the runner and
fails the deployment on an error answer, a function error or a throttle. Its properties
carry the bundle's hash and the target, so a new bundle or target runs it again; Delete
does nothing (a rollback never downgrades).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr

from alquimista_deploy.findings import LOG_KEY_REASON, acknowledge, checkov_skip

if TYPE_CHECKING:
    from alquimista_deploy.stack import RunnerStack

MIGRATE_ON_DEPLOY = Path(__file__).resolve().parents[1] / "migrate_on_deploy"


def bundle_hash(bundle: Path) -> str:
    """The content hash that re-runs the migration when the code changes (never a time)."""
    return hashlib.sha256(bundle.read_bytes()).hexdigest()


def migration(stack: RunnerStack) -> CustomResource:
    """The upgrade as a step of the deployment: after the function is created or updated."""
    handler = lambda_.Function(
        stack, "MigrateOnDeploy", runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.on_event", code=lambda_.Code.from_asset(str(MIGRATE_ON_DEPLOY)),
        timeout=Duration.minutes(15), memory_size=128,
        description=f"deploy step: upgrade with {stack.ctx.function_name}, fail on error",
        log_group=_log_group(stack, "MigrateOnDeployLogs"))
    stack.function.grant_invoke(handler)
    provider = cr.Provider(stack, "MigrateOnDeployProvider", on_event_handler=handler,
                           log_group=_log_group(stack, "MigrateOnDeployProviderLogs"))
    resource = CustomResource(stack, "Migration", service_token=provider.service_token,
                              resource_type="Custom::AlquimistaSchemaMigration", properties={
                                  "FunctionName": stack.function.function_name,
                                  "Target": stack.ctx.migrate_target,
                                  "BundleHash": bundle_hash(stack.ctx.bundle)})
    resource.node.add_dependency(stack.function)
    framework = provider.node.find_child("framework-onEvent")
    for function, invokes in ((handler, stack.function), (framework, handler)):
        _acknowledge_deploy_step(stack, function, invokes)
    return resource


def _log_group(stack: Stack, name: str) -> logs.LogGroup:
    group = logs.LogGroup(stack, name, retention=logs.RetentionDays.ONE_MONTH)
    checkov_skip(group, "CKV_AWS_158", LOG_KEY_REASON)
    return group


def _acknowledge_deploy_step(stack: Stack, function: object, invokes: lambda_.Function) -> None:
    """The deploy step's functions run only during a deployment, outside the VPC."""
    assert isinstance(function, lambda_.Function)
    default = invokes.node.default_child
    assert isinstance(default, CfnResource)
    logical = stack.resolve(stack.get_logical_id(default))
    acknowledge(function, f"IAM5[Resource::<{logical}.Arn>:*]",
                "grant_invoke's ':*' is the versions and aliases of that one function")
    acknowledge(function, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]", "AWS's policy for writing a function's own "
                "logs; the deploy step's functions need nothing else")
    acknowledge(function, "L1", "the provider framework pins its runtime; the handler is "
                "plain Python 3.12 with boto3, tested against the runner")
    for check, why in DEPLOY_STEP_CHECKOV.items():
        checkov_skip(function, check, why)


DEPLOY_STEP_CHECKOV = {
    "CKV_AWS_116": "invoked synchronously by CloudFormation during a deployment, never "
                   "asynchronously: a failure fails the deployment, there is nothing to queue",
    "CKV_AWS_117": "calls only the Lambda API (Invoke on the runner): it needs no VPC, and "
                   "reaches no database",
    "CKV_AWS_115": "runs once per deployment; CloudFormation serialises it",
    "CKV_AWS_173": "its environment holds no secret (the framework's own settings)",
}
