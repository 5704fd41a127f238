"""The context's checks across keys, run before anything is synthesized: keys this app does
not read, what the runner would refuse, ARNs outside the stack's partition or region, and
Lambda's limits. Each returns its problems as lines that start with the key they are about.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from alquimista_deploy import aws_rules
from alquimista_deploy.validated import DeployContext

# Plain keys the CDK CLI itself writes (`cdk acknowledge`, telemetry); its other keys carry a
# colon (aws:cdk:..., lookups cached in cdk.context.json) or start with @ (feature flags).
CDK_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
# Lambda's limit on the environment, measured as the variables' JSON ("String measured:
# {...}" in its error).
MAX_ENVIRONMENT_BYTES = 4096
EXTENSION_PREFIXES = ("PARAMETERS_SECRETS_EXTENSION_", "SECRETS_MANAGER_", "SSM_PARAMETER_STORE_")
# Region prefix -> partition (every other region is in "aws").
PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"),
              ("us-iso-", "aws-iso"), ("eu-isoe-", "aws-iso-e"), ("us-isof-", "aws-iso-f"))
# Why an ARN must be in the stack's own region.
SAME_REGION = {
    "dbSecretArn": "the function asks Secrets Manager in its own region (use the secret's "
                   "replica in {region}, or deploy the stack to {other})",
    "secretKmsKeyArn": "the key is used through Secrets Manager in the stack's region "
                       "(kms:ViaService secretsmanager.{region})",
    "alarmTopicArn": "a CloudWatch alarm notifies only a topic in its own region",
}


def across_keys(ctx: DeployContext, bad: set[str], bundle_names: set[str] | None) -> list[str]:
    """The checks below; ``bad`` holds the keys already reported (not reported again)."""
    return [*runner_problems(ctx, bad), *arn_problems(ctx, bad),
            *environment_problems(ctx, bundle_names)]


def unknown_keys(values: Mapping[str, Any], known: tuple[str, ...]) -> list[str]:
    """Keys this app does not read, each with the nearest known key (difflib): a misspelt
    key would otherwise be ignored without a word, and its default used."""
    problems = []
    lower = {k.lower(): k for k in known}
    for key in values:
        if key in known or key in CDK_KEYS or ":" in key or key.startswith("@"):
            continue
        near = difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.6)
        problems.append(f"{key}: not a context key of this app; did you mean {lower[near[0]]}?"
                        if near else f"{key}: not a context key of this app (its keys: "
                        f"{', '.join(known)})")
    return problems


def runner_problems(ctx: DeployContext, bad: set[str]) -> list[str]:
    """What the runner would refuse at run time (answering BAD_CONFIG to every event), by
    its own validator: one rule for the function and for this app."""
    from alquimista_schema.settings import Settings

    try:
        variables = ctx.function_environment()
    except ValueError:  # reserved names: reported on their own
        variables = {**ctx.extra_environment, "ENVIRONMENT": ctx.env}
    problems = []
    for name, why in Settings.problems(variables).items():
        if name == "ENVIRONMENT" and "env" not in bad:
            problems.append(f"env={ctx.env!r} is passed as ENVIRONMENT, which the runner "
                            f"refuses: {why}")
        elif name != "ENVIRONMENT":
            problems.append(f"extraEnvironment: {why} (the runner would answer BAD_CONFIG "
                            "to every event)")
    return problems


def partition_of(region: str) -> str:
    """The partition a region belongs to."""
    return next((p for prefix, p in PARTITIONS if region.startswith(prefix)), "aws")


def arn_problems(ctx: DeployContext, bad: set[str]) -> list[str]:
    """Every ARN in the stack's partition and region."""
    problems: list[str] = []
    arns = {"dbSecretArn": ctx.db_secret_arn, "secretKmsKeyArn": ctx.secret_kms_key_arn,
            "alarmTopicArn": ctx.alarm_topic_arn}
    if "region" in bad:
        return problems
    expected = partition_of(ctx.region)
    for key, arn in arns.items():
        if not arn or key in bad:
            continue
        _, partition, _, region, *_ = arn.split(":")
        if partition != expected:
            problems.append(f"{key} is in partition {partition}, but region {ctx.region} is in "
                            f"{expected}: use an ARN of the stack's partition")
        elif region != ctx.region:
            why = SAME_REGION[key].format(region=ctx.region, other=region)
            problems.append(f"{key} is in region {region}, but the stack deploys to "
                            f"{ctx.region}: {why}")
    return problems


def environment_problems(ctx: DeployContext, bundle_names: set[str] | None) -> list[str]:
    """Lambda's 4 KB environment, and a CA bundle the zip must hold."""
    problems = []
    variables = ctx.deployed_environment()
    size = len(json.dumps(variables, separators=(",", ":")).encode())
    if size > MAX_ENVIRONMENT_BYTES:
        problems.append(f"extraEnvironment: the function's environment would be {size:,} bytes "
                        f"(its variables as JSON, as Lambda measures them), over Lambda's "
                        f"{MAX_ENVIRONMENT_BYTES:,}: shorten or drop variables")
    ca = ctx.extra_environment.get("DB_SSLROOTCERT", "")
    inside = ca.removeprefix("/var/task/") if not ca.startswith("/") or \
        ca.startswith("/var/task/") else None
    if ca and inside is not None and bundle_names is not None \
            and inside not in bundle_names:
        problems.append(f"extraEnvironment: DB_SSLROOTCERT={ca!r} is not in the bundle "
                        f"(Lambda unzips it into /var/task): add the CA file to the zip, or "
                        "point at a layer's path (/opt/...)")
    return problems


def operations_problems(ctx: DeployContext) -> list[str]:
    """Migrate on deploy, the snapshot before an upgrade, IAM authentication: what each
    needs of the other keys."""
    from alquimista_schema import settings, targets
    from alquimista_schema.errors import SchemaError

    problems = []
    try:
        targets.parse(ctx.migrate_target, "up")
    except SchemaError as exc:
        problems.append(f"migrateTarget: {exc}")
    try:
        snapshot, _ = settings.snapshot_setting(ctx.extra_environment, ctx.runner_environment)
    except SchemaError:
        snapshot = False  # reported by runner_problems
    if snapshot and not ctx.db_cluster_identifier:
        problems.append(
            "dbClusterIdentifier: the runner snapshots the cluster before each upgrade "
            "(SNAPSHOT_BEFORE_UPGRADE, on by default in prod): name the cluster "
            '(-c dbClusterIdentifier=...), or pass extraEnvironment {"SNAPSHOT_BEFORE_UPGRADE": '
            '"false"}')
    return problems + _iam_problems(ctx)


def _iam_problems(ctx: DeployContext) -> list[str]:
    if not ctx.iam_auth:
        given = [k for k, v in (("dbUser", ctx.db_user),
                                ("clusterResourceId", ctx.cluster_resource_id)) if v]
        return [f"{key}: only used with iamAuth=true" for key in given]
    problems = [f"{key}: needed with iamAuth=true ({why})" for key, value, why in (
        ("dbUser", ctx.db_user, "the role the token logs in as; GRANT rds_iam TO it"),
        ("clusterResourceId", ctx.cluster_resource_id, "rds-db:connect names the cluster by "
         "its resource id, cluster-..."),
        ("dbHost", ctx.db_host, "the writer endpoint the token is signed for"),
        ("dbName", ctx.db_name, "the database to connect to")) if not value]
    if ctx.db_secret_arn:
        problems.append("dbSecretArn: iamAuth=true reads no secret: leave dbSecretArn out")
    return problems


# --- what AWS refuses, across keys (issue 27) ---------------------------------------------

SNAPSHOT_WAIT, DEADLINE_MARGIN = "SNAPSHOT_WAIT_SECONDS", "DEADLINE_MARGIN_SECONDS"
NAT_EGRESS = "HTTPS to the RDS API's public endpoint through the subnets' NAT gateway"
RDS_FIXES = ("createRdsEndpoint=true (an RDS API endpoint in these subnets), or "
             f"rdsApiThroughNat=true (egress TCP 443 to 0.0.0.0/0: {NAT_EGRESS})")


def aws_problems(ctx: DeployContext, bad: set[str]) -> list[str]:
    """Contexts AWS would refuse, or deploy to a runner that cannot work: each check names
    its key and the fix."""
    return [why for check in AWS_CHECKS for why in [check(ctx, bad)] if why]


def _rds_managed_secret(ctx: DeployContext, bad: set[str]) -> str | None:
    """RDS's own secret (rds!...) holds the user name and password, never the host or the
    database: the runner would have nothing to connect to."""
    if "dbSecretArn" in bad or not aws_rules.rds_managed(ctx.db_secret_arn) or (
            ctx.db_host and ctx.db_name):
        return None
    lacking = " and ".join(k for k, v in (("dbHost", ctx.db_host), ("dbName", ctx.db_name))
                           if not v)
    return (f"dbSecretArn is a secret RDS manages (rds!...), which holds only username and "
            f"password: pass {lacking} (the cluster's writer endpoint and the database)")


def _snapshot_wait(ctx: DeployContext, bad: set[str]) -> str | None:
    """An explicit SNAPSHOT_WAIT_SECONDS that, with the deadline's margin, outlasts the
    function: the runner bounds the wait by its deadline anyway, so the setting would promise
    a wait that cannot happen."""
    from alquimista_schema.settings import Settings

    settings, wrong = Settings.read(dict(ctx.extra_environment))
    if SNAPSHOT_WAIT not in ctx.extra_environment or {SNAPSHOT_WAIT, DEADLINE_MARGIN} & set(
            wrong) or "functionTimeout" in bad:
        return None
    needed = settings.snapshot_wait + settings.margin
    if needed <= ctx.function_timeout:
        return None
    return (f"extraEnvironment: {SNAPSHOT_WAIT}={settings.snapshot_wait:g} plus "
            f"{DEADLINE_MARGIN} ({settings.margin:g}) is {needed:g}s, longer than "
            f"functionTimeout={ctx.function_timeout}: the wait can never be that long (the "
            f"runner stops at its deadline); raise functionTimeout to at least {needed:g} or "
            f"lower {SNAPSHOT_WAIT}")


def _alarm_choice(ctx: DeployContext, bad: set[str]) -> str | None:
    """In prod a failed migration must reach someone, or nobody by choice."""
    if ctx.runner_environment != "prod" or ctx.alarm_topic_arn or ctx.no_alarm_topic \
            or "alarmTopicArn" in bad:
        return None
    return ("alarmTopicArn: env=prod needs an SNS topic for the alarms (failed answers, the "
            "dead-letter queue, drift): pass -c alarmTopicArn=arn:aws:sns:..., or "
            "alarmTopicArn=none to choose alarms without actions")


def _endpoint_key(ctx: DeployContext) -> str | None:
    """The key that narrows the function's HTTPS to a Secrets Manager endpoint, if any."""
    return next((key for key, given in (
        ("createSecretsManagerEndpoint", ctx.create_secrets_manager_endpoint),
        ("secretsManagerEndpointSecurityGroupId",
         ctx.secrets_manager_endpoint_security_group_id)) if given), None)


def _two_routes(ctx: DeployContext, bad: set[str]) -> str | None:
    """An endpoint and the NAT for one API: one rule too many, and no way to tell which."""
    if not (ctx.create_rds_endpoint and ctx.rds_api_through_nat):
        return None
    return ("createRdsEndpoint and rdsApiThroughNat exclude each other: reach the RDS API "
            "through an endpoint in the VPC, or through the subnets' NAT gateway")


def _nat_unneeded(ctx: DeployContext, bad: set[str]) -> str | None:
    """The NAT rule is for the RDS API's calls past an endpoint key; elsewhere it would only
    widen the group (or repeat the rule that is already there)."""
    if not ctx.rds_api_through_nat or (_endpoint_key(ctx) and ctx.db_cluster_identifier):
        return None
    return ("rdsApiThroughNat: only used with dbClusterIdentifier and an endpoint key "
            "(createSecretsManagerEndpoint or secretsManagerEndpointSecurityGroupId); "
            "otherwise the function already has HTTPS to any IPv4 address, or never calls the "
            "RDS API: leave it out")


def _rds_unreachable(ctx: DeployContext, bad: set[str]) -> str | None:
    """The RDS API must be reachable whenever the runner calls it (operations.calls_rds_api):
    an endpoint key narrows the function's HTTPS to the Secrets Manager endpoint."""
    endpoint = _endpoint_key(ctx)
    if not endpoint or not ctx.db_cluster_identifier or ctx.create_rds_endpoint \
            or ctx.rds_api_through_nat or "dbClusterIdentifier" in bad:
        return None
    return (f"dbClusterIdentifier: the runner calls the RDS API for this cluster (its restore "
            f"window, the snapshot before an upgrade and their retention), but with {endpoint} "
            "the function's security group lets out only PostgreSQL and HTTPS to the Secrets "
            f"Manager endpoint, so the call could only time out: pass {RDS_FIXES}")


AWS_CHECKS = (_rds_managed_secret, _snapshot_wait, _alarm_choice, _two_routes, _nat_unneeded,
              _rds_unreachable)
