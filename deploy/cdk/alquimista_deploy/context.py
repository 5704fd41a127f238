"""The app's inputs: CDK context parsed once into a typed value, with errors that say what to pass.

Values come from ``cdk synth -c key=value`` (always strings), ``cdk.json``/``cdk.context.json``
or ``CDK_CONTEXT_JSON`` (any JSON type), so every reader accepts both forms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alquimista_deploy import checks, spec
from alquimista_deploy.formats import (
    DEFAULT_TOTAL_TIMEOUT,
    EXAMPLE,
    KNOWN,
    MAX_FUNCTION_TIMEOUT,
    MAX_TOTAL_TIMEOUT,
    REPO_ROOT,
    REQUIRED,
    STACK_SET,
)
from alquimista_deploy.reader import Reader, blank
from alquimista_deploy.validated import ContextError, DeployContext

__all__ = ["ContextError", "DeployContext", "from_context", "read_context"]


def from_context(values: Mapping[str, Any], root: Path = REPO_ROOT) -> DeployContext:
    """Read and check every key of the context; raise once, listing every problem.

    Checked before anything is synthesized: unknown keys (with the nearest known one),
    missing and malformed values, what the runner itself would refuse at run time
    (alquimista_schema.settings, the function's own validator), ARNs against the stack's
    region and partition, Lambda's limits (16 subnets, a 4 KB environment) and the bundle.
    """
    iam = str(values.get("iamAuth", "")).strip().lower() in ("true", "1", "yes")
    missing = [key for key in REQUIRED if blank(values.get(key))
               and not (key == "dbSecretArn" and iam)]  # IAM: no secret at all
    reader = Reader(values.get, missing)
    reader.problems.extend(checks.unknown_keys(values, KNOWN))
    ctx = DeployContext(
        env=reader.text("env"), account=reader.text("account"), region=reader.text("region"),
        vpc_id=reader.text("vpcId"), subnet_ids=reader.subnets("subnetIds"),
        cluster_security_group_id=reader.text("clusterSecurityGroupId"),
        db_secret_arn=reader.optional("dbSecretArn"), bundle=reader.bundle("bundle", root),
        secret_kms_key_arn=reader.optional("secretKmsKeyArn"),
        db_host=reader.optional("dbHost"), db_port=reader.port("dbPort"),
        db_name=reader.optional("dbName"), extra_environment=reader.mapping("extraEnvironment"),
        create_secrets_manager_endpoint=reader.flag("createSecretsManagerEndpoint"),
        secrets_manager_endpoint_security_group_id=reader.optional(
            "secretsManagerEndpointSecurityGroupId"),
        secrets_extension=reader.flag("secretsExtension"),
        alarm_topic_arn=None if reader.none("alarmTopicArn") else reader.optional(
            "alarmTopicArn"), no_alarm_topic=reader.none("alarmTopicArn"),
        migrate_on_deploy=reader.flag("migrateOnDeploy"),
        migrate_target=reader.optional("migrateTarget") or "head",
        db_cluster_identifier=reader.optional("dbClusterIdentifier"),
        create_rds_endpoint=reader.flag("createRdsEndpoint"),
        drift_schedule=reader.optional("driftSchedule"), iam_auth=reader.flag("iamAuth"),
        db_user=reader.optional("dbUser"), cluster_resource_id=reader.optional("clusterResourceId"),
        function_timeout=reader.seconds("functionTimeout", spec.TIMEOUT_SECONDS, 1,
                                        MAX_FUNCTION_TIMEOUT),
        migrate_total_timeout=reader.seconds("migrateTotalTimeout", DEFAULT_TOTAL_TIMEOUT, 60,
                                             MAX_TOTAL_TIMEOUT),
        reserved_concurrency=reader.concurrency("reservedConcurrency",
                                                spec.RESERVED_CONCURRENCY),
        rds_api_through_nat=reader.flag("rdsApiThroughNat"))
    problems = [*reader.problems, *_consistency_problems(ctx), *checks.operations_problems(ctx),
                *checks.across_keys(ctx, reader.bad, reader.bundle_names),
                *checks.aws_problems(ctx, reader.bad)]
    if missing:
        problems.insert(0, f"missing CDK context: {', '.join(missing)}")
    if problems:
        how = (f"\nPass each missing key with -c KEY=VALUE (or put them in cdk.context.json, or "
               f"CDK_CONTEXT_JSON), for example:\n  {EXAMPLE}") if missing else ""
        raise ContextError(f"invalid CDK context, {len(problems)} problem(s); nothing was "
                           "synthesized:\n  " + "\n  ".join(problems) + how)
    return ctx


def read_context(environ: Mapping[str, str]) -> dict[str, Any]:
    """The context as aws-cdk-lib's App reads it (CDK_CONTEXT_JSON, then the file the CDK
    CLI writes when that is too long): so app.py checks it before jsii starts node."""
    values: dict[str, Any] = {}
    for name, read in (("CDK_CONTEXT_JSON", lambda v: v),
                       ("CONTEXT_OVERFLOW_LOCATION_ENV", lambda v: Path(v).read_text())):
        if environ.get(name):
            try:
                found = json.loads(read(environ[name]))
            except (OSError, ValueError) as exc:
                raise ContextError(f"{name} cannot be read as JSON ({exc})") from None
            values.update(found if isinstance(found, dict) else {})
    return values


def _consistency_problems(ctx: DeployContext) -> list[str]:
    """Keys that contradict each other, and what extraEnvironment may not hold."""
    problems = []
    if ctx.create_secrets_manager_endpoint and ctx.secrets_manager_endpoint_security_group_id:
        problems.append("createSecretsManagerEndpoint and secretsManagerEndpointSecurityGroupId "
                        "exclude each other: make an endpoint, or admit the function to the "
                        "VPC's existing one")
    taken = sorted(STACK_SET & {name.upper() for name in ctx.extra_environment})
    if taken:
        problems.append(f"extraEnvironment: {', '.join(taken)} come from their own keys "
                        "(dbSecretArn, env, dbHost, dbPort, dbName)")
    layer = sorted(name for name in ctx.extra_environment
                   if name.upper().startswith(checks.EXTENSION_PREFIXES))
    if layer:
        problems.append(f"extraEnvironment: {', '.join(layer)} belong to the Parameters and "
                        "Secrets extension: set secretsExtension=true instead")
    try:
        ctx.function_environment()
    except ContextError as exc:
        problems.append(f"extraEnvironment: {exc}")
    return problems
