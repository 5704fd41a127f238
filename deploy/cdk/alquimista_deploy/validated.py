"""The app's inputs once read and checked: DeployContext, and the rule for its environment.

Apart from the reading (context.py) so the checks (checks.py) can take it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alquimista_deploy import aws_rules, spec
from alquimista_deploy.formats import (
    DEFAULT_DB_PORT,
    DEFAULT_TOTAL_TIMEOUT,
    EXTENSION_ENVIRONMENT,
    RESERVED_NAMES,
    RESERVED_PREFIXES,
)


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
