"""The upgrade as a step of the deployment (``migrateOnDeploy``): a custom resource of the
CDK provider framework, with its completion polling.

Its user onEvent (migrate_on_deploy/index.py ``on_event``) decides at once and migrates
nothing, so an Update sent while the stack rolls back succeeds at once; its user isComplete
(``is_complete``) invokes the runner once per poll (every ``QUERY_INTERVAL``) until the
database is at the target, an error answer fails the deploy, or ``migrateTotalTimeout``
runs out (the framework then answers FAILED "Operation timed out"). A migration longer
than one invocation so resumes across polls, and a poll repeated by the framework applies
nothing twice (the runner's lock and upgrade-to-target). Its properties carry the bundle's
hash and the target, so a new bundle or target runs it again; Delete does nothing.

The user functions have explicit names and log groups named ``/aws/lambda/<name>``: the
framework appends exactly that to a failure's reason, so it points at their lines.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import Aws, CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import IConstruct

from alquimista_deploy.findings import LOG_KEY_REASON, acknowledge, checkov_skip
from alquimista_deploy.parts import RunnerParts

MIGRATE_ON_DEPLOY = Path(__file__).resolve().parents[1] / "migrate_on_deploy"
QUERY_INTERVAL = Duration.seconds(30)
"""How often the framework's waiter calls isComplete: a lock another run holds, or a
migration stopped by the runner's deadline, is tried again this much later."""
READ_MARGIN_SECONDS = 30
"""The isComplete handler waits for the runner's answer this much past its timeout."""
HANDLER_MARGIN_SECONDS = 60
"""The isComplete handler lives this much past the runner's timeout (Lambda's 900 at most)."""
MAX_HANDLER_SECONDS = 900
MAX_NAME = 64  # Lambda's limit on a function name


def bundle_hash(bundle: Path) -> str:
    """The content hash that re-runs the migration when the code changes (never a time)."""
    return hashlib.sha256(bundle.read_bytes()).hexdigest()


def function_name(stack: RunnerParts, role: str) -> str:
    """``aurora-migrations-<role>-<env>``, at most 64 characters (a hash keeps it unique)."""
    name = f"aurora-migrations-{role}-{stack.ctx.env}"
    if len(name) <= MAX_NAME:
        return name
    return f"{name[:MAX_NAME - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def migration(stack: RunnerParts) -> CustomResource:
    """The upgrade as a step of the deployment: after the function is created or updated."""
    runner_timeout = stack.ctx.function_timeout
    decide = _handler(stack, "MigrateOnDeploy", "deploy", "index.on_event", 30,
                      "deploy step: decide (an Update during a rollback succeeds at once)")
    decide.add_to_role_policy(iam.PolicyStatement(  # is the stack rolling back?
        actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]))
    poll = _handler(stack, "MigrateOnDeployPoll", "deploy-poll", "index.is_complete",
                    min(MAX_HANDLER_SECONDS, runner_timeout + HANDLER_MARGIN_SECONDS),
                    f"deploy step: upgrade with {stack.ctx.function_name} once per poll")
    poll.add_environment("READ_TIMEOUT_SECONDS", str(runner_timeout + READ_MARGIN_SECONDS))
    stack.function.grant_invoke(poll)
    provider = cr.Provider(stack, "MigrateOnDeployProvider", on_event_handler=decide,
                           is_complete_handler=poll, query_interval=QUERY_INTERVAL,
                           total_timeout=Duration.seconds(stack.ctx.migrate_total_timeout),
                           log_group=_log_group(stack, "MigrateOnDeployProviderLogs"))
    resource = CustomResource(stack, "Migration", service_token=provider.service_token,
                              resource_type="Custom::AlquimistaSchemaMigration", properties={
                                  "FunctionName": stack.function.function_name,
                                  "Target": stack.ctx.migrate_target,
                                  "BundleHash": bundle_hash(stack.ctx.bundle),
                                  "RunnerLogGroup": stack.log_group.log_group_name})
    resource.node.add_dependency(stack.function)
    _acknowledge(stack, decide)
    _acknowledge(stack, poll, stack.function)
    for child in ("framework-onEvent", "framework-isComplete", "framework-onTimeout"):
        _acknowledge(stack, provider.node.find_child(child), decide, poll)
    _acknowledge_waiter(stack, provider)
    return resource


def _handler(stack: RunnerParts, construct_id: str, role: str, handler: str, timeout: int,
             description: str) -> lambda_.Function:
    """A user handler named explicitly, logging to ``/aws/lambda/<its name>``: the log group
    the framework's failure reason names (``Logs: /aws/lambda/<name>``)."""
    name = function_name(stack, role)
    return lambda_.Function(
        stack, construct_id, function_name=name, runtime=lambda_.Runtime.PYTHON_3_12,
        handler=handler, code=lambda_.Code.from_asset(str(MIGRATE_ON_DEPLOY)),
        timeout=Duration.seconds(timeout), memory_size=128, description=description,
        log_group=_log_group(stack, f"{construct_id}Logs", f"/aws/lambda/{name}"))


def _log_group(stack: Stack, construct_id: str, name: str | None = None) -> logs.LogGroup:
    group = logs.LogGroup(stack, construct_id, log_group_name=name,
                          retention=logs.RetentionDays.ONE_MONTH)
    checkov_skip(group, "CKV_AWS_158", LOG_KEY_REASON)
    return group


def _invoke_finding(stack: Stack, invoked: IConstruct) -> str:
    default = invoked.node.default_child
    assert isinstance(default, CfnResource)
    return f"IAM5[Resource::<{stack.resolve(stack.get_logical_id(default))}.Arn>:*]"


INVOKE_REASON = "grant_invoke's ':*' is the versions and aliases of that one function"


def _acknowledge(stack: Stack, function: object, *invokes: lambda_.Function) -> None:
    """The deploy step's functions run only during a deployment, outside the VPC."""
    assert isinstance(function, lambda_.Function)
    for invoked in invokes:
        acknowledge(function, _invoke_finding(stack, invoked), INVOKE_REASON)
    acknowledge(function, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]", "AWS's policy for writing a function's own "
                "logs; the deploy step's functions need nothing else")
    acknowledge(function, "L1", "the provider framework pins its runtime; the handler is "
                "plain Python 3.12 with boto3, tested against the runner")
    for check, why in DEPLOY_STEP_CHECKOV.items():
        checkov_skip(function, check, why)


def _acknowledge_waiter(stack: Stack, provider: cr.Provider) -> None:
    """The framework's waiter state machine, as the framework makes it."""
    waiter = provider.node.find_child("waiter-state-machine")
    for child in ("framework-isComplete", "framework-onTimeout"):
        acknowledge(waiter, _invoke_finding(stack, provider.node.find_child(child)),
                    INVOKE_REASON)
    acknowledge(waiter, "SF1", "the waiter's only steps are the framework's functions, which "
                "log each poll's event and answer in the provider's log group")
    acknowledge(waiter, "SF2", "X-Ray tracing of a waiter that calls one function every "
                "query interval during a deployment shows nothing its logs do not")


DEPLOY_STEP_CHECKOV = {
    "CKV_AWS_116": "invoked synchronously by CloudFormation during a deployment, never "
                   "asynchronously: a failure fails the deployment, there is nothing to queue",
    "CKV_AWS_117": "calls only the Lambda and CloudFormation APIs (Invoke on the runner, "
                   "DescribeStacks on its own stack): it needs no VPC, and reaches no database",
    "CKV_AWS_115": "runs once per deployment; CloudFormation serialises it",
    "CKV_AWS_173": "its environment holds no secret (the framework's own settings)",
}
