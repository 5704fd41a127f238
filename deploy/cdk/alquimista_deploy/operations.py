"""What the runner does beside answering invocations: its permissions for a snapshot and
for IAM authentication, and the scheduled checks.

* The role's statements: the one secret (or, with IAM authentication, ``rds-db:connect``
  for one user of one cluster); with ``dbClusterIdentifier``, ``rds:DescribeDBClusters`` on
  that cluster (the restore window the runner reports); and when the runner may snapshot
  (:func:`snapshots`), the snapshot actions on that cluster and on snapshots under the
  runner's name prefix, and deleting its own old ones (``SNAPSHOT_KEEP``): never another
  snapshot, never the cluster, never ``*``.
* The route to the RDS API (:func:`rds_endpoint`, or ``rdsApiThroughNat``): whenever the
  runner calls it (:func:`calls_rds_api`), the function's group lets HTTPS out to it.
* Migrate on deploy: alquimista_deploy.deploy_step.
* Scheduled drift and verify (``driftSchedule``): an EventBridge rule invokes the runner
  with each event; a metric filter counts what they find, and an alarm fires on it.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from alquimista_deploy.parts import RunnerParts
from alquimista_deploy.validated import DeployContext

SNAPSHOT_PREFIX = "alquimista-schema-"  # alquimista_schema.runtime.snapshot.PREFIX
RDS_ENDPOINT_EGRESS = "HTTPS to the RDS API endpoint"
# What the scheduled checks find: the runner logs drift.found, or answers CHECKSUM_MISMATCH.
FOUND = logs.FilterPattern.any(
    logs.FilterPattern.string_value("$.step", "=", "drift.found"),
    logs.FilterPattern.string_value("$.error_code", "=", "CHECKSUM_MISMATCH"),
)


def snapshots(ctx: DeployContext) -> bool:
    """Whether the runner will snapshot the cluster before an upgrade (as it decides it)."""
    from alquimista_schema.settings import snapshot_setting

    return snapshot_setting(ctx.extra_environment, ctx.runner_environment)[0] and bool(
        ctx.db_cluster_identifier)


def calls_rds_api(ctx: DeployContext) -> bool:
    """Whether the runner will call the RDS API: whenever it names a cluster
    (DB_CLUSTER_IDENTIFIER: its restore window, the snapshot and its retention)."""
    return bool(ctx.db_cluster_identifier)


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
    cluster = f"{arn}:cluster:{ctx.db_cluster_identifier}"
    if calls_rds_api(ctx):
        statements.append(iam.PolicyStatement(actions=["rds:DescribeDBClusters"],
                                              resources=[cluster]))
    if snapshots(ctx):
        mine = f"{arn}:cluster-snapshot:{SNAPSHOT_PREFIX}*"
        statements += [
            iam.PolicyStatement(actions=["rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"],
                                resources=[cluster, mine]),
            iam.PolicyStatement(actions=["rds:DescribeDBClusterSnapshots"],
                                resources=[cluster, mine]),
            # Retention (SNAPSHOT_KEEP): the runner's own snapshots only, never the cluster.
            iam.PolicyStatement(actions=["rds:DeleteDBClusterSnapshot"], resources=[mine])]
    return statements


def rds_endpoint(stack: RunnerParts) -> ec2.InterfaceVpcEndpoint:
    """An RDS API Interface endpoint (isolated subnets) admitting the function on 443; the
    function's group lets HTTPS out to that endpoint's group and nowhere wider.

    Both rules are made one by one: ``connections.allow_from`` gave the function's egress
    the ingress's description ("HTTPS from ..."), which said the opposite of what it does.
    """
    group = ec2.SecurityGroup(
        stack, "RdsEndpointSecurityGroup", vpc=stack.vpc, allow_all_outbound=False,
        description=f"RDS API endpoint: HTTPS from {stack.ctx.function_name}")
    group.add_ingress_rule(stack.security_group, ec2.Port.tcp(443),
                           f"HTTPS from {stack.ctx.function_name}")
    stack.security_group.add_egress_rule(group, ec2.Port.tcp(443), RDS_ENDPOINT_EGRESS)
    return ec2.InterfaceVpcEndpoint(
        stack, "RdsEndpoint", vpc=stack.vpc, subnets=stack.subnets,
        service=ec2.InterfaceVpcEndpointAwsService.RDS, security_groups=[group],
        private_dns_enabled=True, open=False)


def schedule(stack: RunnerParts) -> cloudwatch.Alarm:
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
