"""What the runner does beside answering invocations: its permissions for a snapshot and
for IAM authentication, the upgrade as a step of the deployment, and the scheduled checks.

* The role's statements: the one secret (or, with IAM authentication, ``rds-db:connect``
  for one user of one cluster), and the snapshot actions on that cluster and on snapshots
  under the runner's name prefix only.
* Migrate on deploy (``migrateOnDeploy``): a custom resource of the provider framework whose
  onEvent handler (migrate_on_deploy/index.py) invokes the runner synchronously and raises
  on an error answer, a function error or a throttle, so CloudFormation fails the
  deployment with the runner's error_code and message. Chosen over ``triggers.Trigger``,
  which fails only on a function error: the runner answers its errors, it does not raise
  them. Its properties carry the bundle's hash and the target, so a new bundle or target
  runs it again; Delete does nothing (a rollback never downgrades).
* Scheduled drift and verify (``driftSchedule``): an EventBridge rule invokes the runner
  with each event; a metric filter counts what they find, and an alarm fires on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr

from alquimista_deploy.context import DeployContext
from alquimista_deploy.findings import LOG_KEY_REASON, acknowledge, checkov_skip

if TYPE_CHECKING:
    from alquimista_deploy.stack import RunnerStack

SNAPSHOT_PREFIX = "alquimista-schema-"  # alquimista_schema.runtime.snapshot.PREFIX
MIGRATE_ON_DEPLOY = Path(__file__).resolve().parents[1] / "migrate_on_deploy"
# What the scheduled checks find: the runner logs drift.found, or answers CHECKSUM_MISMATCH.
FOUND = logs.FilterPattern.any(
    logs.FilterPattern.string_value("$.step", "=", "drift.found"),
    logs.FilterPattern.string_value("$.error_code", "=", "CHECKSUM_MISMATCH"),
)


def snapshots(ctx: DeployContext) -> bool:
    """Whether the runner will snapshot the cluster before an upgrade (as it decides it)."""
    from alquimista_schema.settings import snapshot_setting

    return snapshot_setting(ctx.extra_environment, ctx.env)[0] and bool(
        ctx.db_cluster_identifier)


def runner_statements(stack: Stack, ctx: DeployContext) -> list[iam.PolicyStatement]:
    """Exactly what the runner calls: its secret (or IAM connect), and the snapshot."""
    arn = f"arn:{stack.partition}:rds:{ctx.region}:{ctx.account}"
    statements = []
    if ctx.db_secret_arn:
        statements.append(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"],
                                              resources=[ctx.db_secret_arn]))
    if ctx.secret_kms_key_arn:  # a customer managed key, used through Secrets Manager
        statements.append(iam.PolicyStatement(
            actions=["kms:Decrypt"], resources=[ctx.secret_kms_key_arn],
            conditions={"StringEquals": {
                "kms:ViaService": f"secretsmanager.{ctx.region}.{stack.url_suffix}"}}))
    if ctx.iam_auth:
        statements.append(iam.PolicyStatement(actions=["rds-db:connect"], resources=[
            f"arn:{stack.partition}:rds-db:{ctx.region}:{ctx.account}:dbuser:"
            f"{ctx.cluster_resource_id}/{ctx.db_user}"]))
    if snapshots(ctx):
        mine = f"{arn}:cluster-snapshot:{SNAPSHOT_PREFIX}*"
        cluster = f"{arn}:cluster:{ctx.db_cluster_identifier}"
        statements += [
            iam.PolicyStatement(actions=["rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"],
                                resources=[cluster, mine]),
            iam.PolicyStatement(actions=["rds:DescribeDBClusterSnapshots"],
                                resources=[cluster, mine])]
    return statements


def rds_endpoint(stack: RunnerStack) -> ec2.InterfaceVpcEndpoint:
    """An RDS API Interface endpoint (isolated subnets) admitting the function on 443."""
    group = ec2.SecurityGroup(
        stack, "RdsEndpointSecurityGroup", vpc=stack.vpc, allow_all_outbound=False,
        description=f"RDS API endpoint: HTTPS from {stack.ctx.function_name}")
    group.connections.allow_from(stack.security_group, ec2.Port.tcp(443),
                                 f"HTTPS from {stack.ctx.function_name}")
    return ec2.InterfaceVpcEndpoint(
        stack, "RdsEndpoint", vpc=stack.vpc, subnets=stack.subnets,
        service=ec2.InterfaceVpcEndpointAwsService.RDS, security_groups=[group],
        private_dns_enabled=True, open=False)


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


def schedule(stack: RunnerStack) -> cloudwatch.Alarm:
    """Run drift and verify on a schedule; alarm when either finds something."""
    rule = events.Rule(stack, "ScheduledChecks",
                       schedule=events.Schedule.expression(stack.ctx.drift_schedule or ""),
                       description=f"drift and verify with {stack.ctx.function_name}")
    for action in ("drift", "verify"):
        rule.add_target(targets.LambdaFunction(
            stack.function, event=events.RuleTargetInput.from_object({"action": action}),
            retry_attempts=0, dead_letter_queue=stack.dead_letters))
    return stack.alarm_on(
        stack.log_count("DriftFound", FOUND).metric(statistic="Sum", period=Duration.hours(1)),
        "DriftAlarm", "the schema changed by hand (drift), or an applied revision was edited "
        f"(checksum mismatch): see {stack.ctx.function_name}'s log")
