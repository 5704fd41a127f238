"""The app's inputs: CDK context parsed once into a typed value, with errors that say what to pass.

Values come from ``cdk synth -c key=value`` (always strings), ``cdk.json``/``cdk.context.json``
or ``CDK_CONTEXT_JSON`` (any JSON type), so every reader accepts both forms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alquimista_deploy import spec

REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLE_COMMAND = (f"alquimista-schema bundle --python {spec.PYTHON_VERSION} "
                  f"--arch {spec.ARCHITECTURE} --output {spec.DEFAULT_BUNDLE}")
EXAMPLE = ("cd deploy/cdk && npx aws-cdk@2 deploy -c env=dev -c account=123456789012 "
           "-c region=us-east-1 -c vpcId=vpc-0123456789abcdef0 "
           "-c subnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 "
           "-c clusterSecurityGroupId=sg-0123456789abcdef0 "
           "-c dbSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:aurora-AbCdEf")
REQUIRED = ("env", "account", "region", "vpcId", "subnetIds", "clusterSecurityGroupId",
            "dbSecretArn")
DEFAULT_DB_PORT = 5432

# key -> (pattern, what a valid value looks like)
FORMATS: dict[str, tuple[str, str]] = {
    "env": (r"[a-z][a-z0-9-]{0,19}", "lower-case letters, digits and hyphens, starting with a "
            "letter (dev, staging, prod)"),
    "account": (r"\d{12}", "a 12-digit AWS account id"),
    "region": (r"[a-z]{2}(-[a-z]+)+-\d", "a region name such as us-east-1"),
    "vpcId": (r"vpc-[0-9a-f]+", "a VPC id (vpc-...)"),
    "clusterSecurityGroupId": (r"sg-[0-9a-f]+", "a security group id (sg-...)"),
    "secretsManagerEndpointSecurityGroupId": (r"sg-[0-9a-f]+", "a security group id (sg-...)"),
    "dbSecretArn": (r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+",
                    "the full ARN of the secret "
                    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx), not its name"),
    "secretKmsKeyArn": (r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+",
                        "the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
    "alarmTopicArn": (r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+",
                      "the ARN of an SNS topic"),
    "dbHost": (r"[A-Za-z0-9.-]+", "a host name"),
    "dbName": (r"[A-Za-z_][A-Za-z0-9_$]*", "a PostgreSQL database name"),
}
SUBNET_ID = re.compile(r"subnet-[0-9a-f]+")
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Lambda sets these itself, or they change the runtime: a deployer setting one either fails
# the deployment (AWS_REGION did, once) or silently breaks the function.
RESERVED_PREFIXES = ("AWS_", "LAMBDA_", "_")
RESERVED_NAMES = frozenset({"LANG", "TZ", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"})
STACK_SET = frozenset({"DB_SECRET_ARN", "ENVIRONMENT", "DB_HOST", "DB_PORT", "DB_NAME"})
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class ContextError(ValueError):
    """A context value is missing or malformed; the message says which and how to pass it."""


def check_environment(variables: Mapping[str, str]) -> None:
    """Refuse names Lambda reserves, before CloudFormation (or the runtime) does."""
    bad = sorted(name for name in variables
                 if not ENV_NAME.fullmatch(name) or name.upper().startswith(RESERVED_PREFIXES)
                 or name.upper() in RESERVED_NAMES)
    if bad:
        raise ContextError(
            f"environment variable(s) {', '.join(bad)} cannot be set: Lambda reserves names "
            "starting with AWS_, LAMBDA_ or _ and the runtime owns "
            f"{', '.join(sorted(RESERVED_NAMES))} (the region comes from the runtime)")


@dataclass(frozen=True)
class DeployContext:
    """Everything the stack needs, validated."""

    env: str
    account: str
    region: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    cluster_security_group_id: str
    db_secret_arn: str
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

    @property
    def function_name(self) -> str:
        """Name `alquimista-schema invoke --function` is given."""
        return f"aurora-migrations-runner-{self.env}"

    @property
    def stack_name(self) -> str:
        """One stack per environment and account/region."""
        return f"AlquimistaSchemaRunner-{self.env}"

    @property
    def database_port(self) -> int:
        """Port the cluster admits the function on."""
        return self.db_port or DEFAULT_DB_PORT

    def function_environment(self) -> dict[str, str]:
        """What the runner reads; the stack's own names win over extraEnvironment."""
        variables = {**self.extra_environment, "DB_SECRET_ARN": self.db_secret_arn,
                     "ENVIRONMENT": self.env}
        optional = {"DB_HOST": self.db_host, "DB_PORT": self.db_port, "DB_NAME": self.db_name}
        variables.update({k: str(v) for k, v in optional.items() if v is not None})
        check_environment(variables)
        return variables


def from_context(get: Callable[[str], Any], root: Path = REPO_ROOT) -> DeployContext:
    """Read and check every key (``get`` is ``app.node.try_get_context``); raise once for all."""
    missing = [key for key in REQUIRED if _blank(get(key))]
    if missing:
        raise ContextError(
            f"missing CDK context: {', '.join(missing)}. Pass each with -c KEY=VALUE (or put them "
            f"in cdk.context.json, or CDK_CONTEXT_JSON), for example:\n  {EXAMPLE}")
    reader = _Reader(get)
    ctx = DeployContext(
        env=reader.text("env"), account=reader.text("account"), region=reader.text("region"),
        vpc_id=reader.text("vpcId"), subnet_ids=reader.subnets("subnetIds"),
        cluster_security_group_id=reader.text("clusterSecurityGroupId"),
        db_secret_arn=reader.text("dbSecretArn"), bundle=reader.bundle("bundle", root),
        secret_kms_key_arn=reader.optional("secretKmsKeyArn"),
        db_host=reader.optional("dbHost"), db_port=reader.port("dbPort"),
        db_name=reader.optional("dbName"), extra_environment=reader.mapping("extraEnvironment"),
        create_secrets_manager_endpoint=reader.flag("createSecretsManagerEndpoint"),
        secrets_manager_endpoint_security_group_id=reader.optional(
            "secretsManagerEndpointSecurityGroupId"),
        secrets_extension=reader.flag("secretsExtension"),
        alarm_topic_arn=reader.optional("alarmTopicArn"))
    reader.problems.extend(_consistency_problems(ctx))
    if reader.problems:
        raise ContextError("invalid CDK context:\n  " + "\n  ".join(reader.problems))
    return ctx


def _blank(value: Any) -> bool:
    """Absent, or an empty string/list (``-c subnetIds=`` is a mistake, not a choice)."""
    return value is None or (isinstance(value, str | list) and not value)


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
    try:
        ctx.function_environment()
    except ContextError as exc:
        problems.append(f"extraEnvironment: {exc}")
    return problems


def _json(text: str) -> Any:
    """Parse a JSON value given as a string; None when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class _Reader:
    """Turn raw context values into typed ones, collecting every problem instead of the first."""

    def __init__(self, get: Callable[[str], Any]) -> None:
        self.get = get
        self.problems: list[str] = []

    def text(self, key: str) -> str:
        """A required string that must match its format."""
        value = str(self.get(key)).strip()
        pattern, meaning = FORMATS[key]
        if not re.fullmatch(pattern, value):
            self.problems.append(f"{key}={value!r} is not {meaning}")
        return value

    def optional(self, key: str) -> str | None:
        """An optional string; absent or empty means not set."""
        return None if _blank(self.get(key)) else self.text(key)

    def subnets(self, key: str) -> tuple[str, ...]:
        """A JSON list, or a comma-separated string as ``-c`` gives it."""
        value = raw = self.get(key)
        if isinstance(value, str):
            value = _json(value) if value.strip().startswith("[") else value.split(",")
        ids = tuple(str(item).strip() for item in value) if isinstance(value, list) else ()
        wrong = [item for item in ids if not SUBNET_ID.fullmatch(item)]
        if not ids or wrong:
            self.problems.append(f"{key} must be subnet ids (subnet-...), as a JSON list or "
                                 f"comma-separated; got {raw!r}")
        return ids

    def flag(self, key: str) -> bool:
        """A boolean; ``-c key=true`` arrives as the string 'true'."""
        value = self.get(key)
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().lower()
        if text not in TRUE + FALSE:
            self.problems.append(f"{key}={value!r} is not true or false")
        return text in TRUE

    def port(self, key: str) -> int | None:
        """An optional TCP port."""
        value = self.get(key)
        if _blank(value):
            return None
        try:
            port = int(str(value))
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            self.problems.append(f"{key}={value!r} is not a port (1 to 65535)")
        return port

    def mapping(self, key: str) -> dict[str, str]:
        """An optional JSON object of strings (from ``-c`` it is a JSON string)."""
        value = self.get(key)
        if _blank(value):
            return {}
        if isinstance(value, str):
            value = _json(value)
        if not isinstance(value, dict):
            self.problems.append(f"{key} must be a JSON object of names to strings")
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def bundle(self, key: str, root: Path) -> Path:
        """The zip `alquimista-schema bundle` made; relative paths start at the repository."""
        path = Path(str(self.get(key) or spec.DEFAULT_BUNDLE)).expanduser()
        path = path if path.is_absolute() else root / path
        if path.suffix != ".zip":
            self.problems.append(f"{key}={str(path)!r} must be the .zip that "
                                 "`alquimista-schema bundle` writes")
        elif not path.is_file():
            self.problems.append(
                f"{key}: {path} does not exist. Build it first, from the repository root: "
                f"`{BUNDLE_COMMAND}` (or pass -c bundle=PATH to another zip)")
        return path
