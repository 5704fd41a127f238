"""The app's inputs: CDK context parsed once into a typed value, with errors that say what to pass.

Values come from ``cdk synth -c key=value`` (always strings), ``cdk.json``/``cdk.context.json``
or ``CDK_CONTEXT_JSON`` (any JSON type), so every reader accepts both forms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alquimista_deploy import aws_rules, checks, spec
from alquimista_deploy.formats import (
    DEFAULT_DB_PORT,
    DEFAULT_TOTAL_TIMEOUT,
    EXAMPLE,
    EXTENSION_ENVIRONMENT,
    KNOWN,
    MAX_FUNCTION_TIMEOUT,
    MAX_TOTAL_TIMEOUT,
    REPO_ROOT,
    REQUIRED,
    RESERVED_NAMES,
    RESERVED_PREFIXES,
    STACK_SET,
)
from alquimista_deploy.reader import Reader, blank


class ContextError(ValueError):
    """A context value is missing or malformed; the message says which and how to pass it."""


# Why a name cannot be set, each with its test, the first that applies: Lambda's own key
# pattern (CloudFormation refuses the function), then the names Lambda or the runtime own.
REFUSED_NAMES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda name: not aws_rules.ENV_KEY.fullmatch(name),
     "Lambda's key pattern is [a-zA-Z]([a-zA-Z0-9_])+ (a letter, then at least one letter, "
     "digit or underscore)"),
    (lambda name: name.upper().startswith(RESERVED_PREFIXES) or name.upper() in RESERVED_NAMES,
     "Lambda reserves names starting with AWS_, LAMBDA_ or _ and the runtime owns "
     f"{', '.join(sorted(RESERVED_NAMES))} (the region comes from the runtime)"),
)


def check_environment(variables: Mapping[str, str]) -> None:
    """Refuse names Lambda refuses or reserves, before CloudFormation (or the runtime) does."""
    refused: dict[str, list[str]] = {why: [] for _, why in REFUSED_NAMES}  # in their order
    for name in sorted(variables):
        why = next((why for test, why in REFUSED_NAMES if test(name)), None)
        if why:
            refused[why].append(name)
    if any(refused.values()):
        raise ContextError("; ".join(f"environment variable(s) {', '.join(names)} cannot be "
                                     f"set: {why}" for why, names in refused.items() if names))


@dataclass(frozen=True)
class DeployContext:
    """Everything the stack needs, validated."""

    env: str
    account: str
    region: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    cluster_security_group_id: str
    db_secret_arn: str | None
    """None with IAM database authentication (iamAuth): no secret is read."""
    bundle: Path
    secret_kms_key_arn: str | None = None
    db_host: str | None = None
    db_port: int | None = None
    db_name: str | None = None
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    create_secrets_manager_endpoint: bool = False
    secrets_manager_endpoint_security_group_id: str | None = None
    secrets_extension: bool = False
    alarm_topic_arn: str | None = None
    migrate_on_deploy: bool = False
    migrate_target: str = "head"
    db_cluster_identifier: str | None = None
    create_rds_endpoint: bool = False
    drift_schedule: str | None = None
    iam_auth: bool = False
    db_user: str | None = None
    cluster_resource_id: str | None = None
    function_timeout: int = spec.TIMEOUT_SECONDS
    """The runner's timeout in seconds (functionTimeout, at most Lambda's 900)."""
    migrate_total_timeout: int = DEFAULT_TOTAL_TIMEOUT
    """Seconds the deploy step may take in all (migrateTotalTimeout, at most 1 hour)."""
    reserved_concurrency: int | None = spec.RESERVED_CONCURRENCY
    """reservedConcurrency; None (``none``) leaves the function unreserved: the migration
    lock still serializes runs, and an account with a low quota can deploy it."""
    no_alarm_topic: bool = False
    """alarmTopicArn=none: no alarm actions, chosen (prod must choose)."""
    rds_api_through_nat: bool = False
    """rdsApiThroughNat: HTTPS to any IPv4 address, for the RDS API's public endpoint
    through the subnets' NAT gateway (instead of createRdsEndpoint)."""

    @property
    def function_name(self) -> str:
        """Name `alquimista-schema invoke --function` is given."""
        return f"aurora-migrations-runner-{self.env}"

    @property
    def stack_name(self) -> str:
        """One stack per environment and account/region."""
        return f"AlquimistaSchemaRunner-{self.env}"

    @property
    def runner_environment(self) -> str:
        """ENVIRONMENT as the runner reads it (production is prod), else env as given."""
        from alquimista_schema.errors import SchemaError
        from alquimista_schema.settings import environment_name

        try:
            return environment_name(self.env)
        except SchemaError:  # reported by checks.runner_problems
            return self.env

    @property
    def database_port(self) -> int:
        """Port the cluster admits the function on."""
        return self.db_port or DEFAULT_DB_PORT

    def function_environment(self) -> dict[str, str]:
        """What the runner reads; the stack's own names win over extraEnvironment."""
        variables = {**self.extra_environment, "ENVIRONMENT": self.env}
        optional = {"DB_SECRET_ARN": self.db_secret_arn, "DB_HOST": self.db_host,
                    "DB_PORT": self.db_port, "DB_NAME": self.db_name,
                    "DB_CLUSTER_IDENTIFIER": self.db_cluster_identifier,
                    "DB_AUTH": "iam" if self.iam_auth else None,
                    "DB_USER": self.db_user if self.iam_auth else None}
        variables.update({k: str(v) for k, v in optional.items() if v is not None})
        check_environment(variables)
        return variables

    def deployed_environment(self) -> dict[str, str]:
        """The function's whole environment once deployed: the extension layer's too."""
        try:
            variables = self.function_environment()
        except ContextError:  # reported on its own; measured all the same
            variables = {**self.extra_environment, "DB_SECRET_ARN": self.db_secret_arn or ""}
        return {**variables, **(EXTENSION_ENVIRONMENT if self.secrets_extension else {})}


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
