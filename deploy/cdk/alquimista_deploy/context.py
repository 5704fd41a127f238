"""The app's inputs: CDK context parsed once into a typed value, with errors that say what to pass.

Values come from ``cdk synth -c key=value`` (always strings), ``cdk.json``/``cdk.context.json``
or ``CDK_CONTEXT_JSON`` (any JSON type), so every reader accepts both forms.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alquimista_deploy import checks, spec

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
OPTIONAL = ("bundle", "dbHost", "dbPort", "dbName", "secretKmsKeyArn", "extraEnvironment",
            "createSecretsManagerEndpoint", "secretsManagerEndpointSecurityGroupId",
            "secretsExtension", "alarmTopicArn")
KNOWN = REQUIRED + OPTIONAL
DEFAULT_DB_PORT = 5432
# Lambda's limits: subnets in a function's VpcConfig; the unzipped code (with layers).
MAX_SUBNETS = 16
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
# What the Parameters and Secrets layer's settings add to the environment (secretsExtension).
EXTENSION_ENVIRONMENT = {
    "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED": "true",
    "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "1000",
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773",
    "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL": "info",
    "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS": "3",
    "SECRETS_MANAGER_TIMEOUT_MILLIS": "0",
    "SECRETS_MANAGER_TTL": "300",
    "SSM_PARAMETER_STORE_TIMEOUT_MILLIS": "0",
    "SSM_PARAMETER_STORE_TTL": "300",
}
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

    def deployed_environment(self) -> dict[str, str]:
        """The function's whole environment once deployed: the extension layer's too."""
        try:
            variables = self.function_environment()
        except ContextError:  # reported on its own; measured all the same
            variables = {**self.extra_environment, "DB_SECRET_ARN": self.db_secret_arn}
        return {**variables, **(EXTENSION_ENVIRONMENT if self.secrets_extension else {})}


def from_context(values: Mapping[str, Any], root: Path = REPO_ROOT) -> DeployContext:
    """Read and check every key of the context; raise once, listing every problem.

    Checked before anything is synthesized: unknown keys (with the nearest known one),
    missing and malformed values, what the runner itself would refuse at run time
    (alquimista_schema.settings, the function's own validator), ARNs against the stack's
    region and partition, Lambda's limits (16 subnets, a 4 KB environment) and the bundle.
    """
    missing = [key for key in REQUIRED if _blank(values.get(key))]
    reader = _Reader(values.get, missing)
    reader.problems.extend(checks.unknown_keys(values, KNOWN))
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
    problems = [*reader.problems, *_consistency_problems(ctx),
                *checks.across_keys(ctx, reader.bad, reader.bundle_names)]
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


def _json(text: str) -> Any:
    """Parse a JSON value given as a string; None when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class _Reader:
    """Turn raw context values into typed ones, collecting every problem instead of the first."""

    def __init__(self, get: Callable[[str], Any], missing: list[str]) -> None:
        self.get = get
        self.missing = set(missing)
        self.problems: list[str] = []
        self.bad: set[str] = set()
        """Keys with a problem already: later checks do not report them again."""
        self.bundle_names: set[str] | None = None

    def problem(self, key: str, message: str) -> None:
        self.bad.add(key)
        self.problems.append(message)

    def text(self, key: str) -> str:
        """A required string that must match its format (a missing one is reported once)."""
        if key in self.missing:
            self.bad.add(key)
            return ""
        value = str(self.get(key)).strip()
        pattern, meaning = FORMATS[key]
        if not re.fullmatch(pattern, value):
            self.problem(key, f"{key}={value!r} is not {meaning}")
        return value

    def optional(self, key: str) -> str | None:
        """An optional string; absent or empty means not set."""
        return None if _blank(self.get(key)) else self.text(key)

    def subnets(self, key: str) -> tuple[str, ...]:
        """A JSON list, or a comma-separated string as ``-c`` gives it: unique, at most 16."""
        if key in self.missing:
            return ()
        value = raw = self.get(key)
        if isinstance(value, str):
            value = _json(value) if value.strip().startswith("[") else value.split(",")
        ids = tuple(str(item).strip() for item in value) if isinstance(value, list) else ()
        wrong = [item for item in ids if not SUBNET_ID.fullmatch(item)]
        twice = sorted({item for item in ids if ids.count(item) > 1})
        if not ids or wrong:
            self.problem(key, f"{key} must be subnet ids (subnet-...), as a JSON list or "
                              f"comma-separated; got {raw!r}")
        elif twice:
            self.problem(key, f"{key} names {', '.join(twice)} more than once: give each "
                              "subnet once")
        elif len(ids) > MAX_SUBNETS:
            self.problem(key, f"{key} names {len(ids)} subnets, over Lambda's limit of "
                              f"{MAX_SUBNETS} for a function")
        return ids

    def flag(self, key: str) -> bool:
        """A boolean; ``-c key=true`` arrives as the string 'true'."""
        value = self.get(key)
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().lower()
        if text not in TRUE + FALSE:
            self.problem(key, f"{key}={value!r} is not true or false")
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
            self.problem(key, f"{key}={value!r} is not a port (1 to 65535)")
        return port

    def mapping(self, key: str) -> dict[str, str]:
        """An optional JSON object of strings (from ``-c`` it is a JSON string)."""
        value = self.get(key)
        if _blank(value):
            return {}
        if isinstance(value, str):
            value = _json(value)
        if not isinstance(value, dict):
            self.problem(key, f"{key} must be a JSON object of names to strings")
            return {}
        return {str(k): str(v) for k, v in value.items()}

    def bundle(self, key: str, root: Path) -> Path:
        """The zip `alquimista-schema bundle` made (relative paths start at the repository):
        readable, holding the handler, within Lambda's unzipped size."""
        path = Path(str(self.get(key) or spec.DEFAULT_BUNDLE)).expanduser()
        path = path if path.is_absolute() else root / path
        if path.suffix != ".zip":
            self.problem(key, f"{key}={str(path)!r} must be the .zip that "
                              "`alquimista-schema bundle` writes")
        elif not path.is_file():
            self.problem(key, f"{key}: {path} does not exist. Build it first, from the "
                              f"repository root: `{BUNDLE_COMMAND}` (or pass -c bundle=PATH to "
                              "another zip)")
        else:
            why = self._bundle_problem(path)
            if why:
                self.problem(key, f"{key}: {path} {why}. Build it with `{BUNDLE_COMMAND}`")
        return path

    def _bundle_problem(self, path: Path) -> str | None:
        """Why the zip cannot be the function's code, or None."""
        module, _, function = spec.HANDLER.rpartition(".")
        handler = module.replace(".", "/") + ".py"
        try:
            with zipfile.ZipFile(path) as archive:
                self.bundle_names = set(archive.namelist())
                unzipped = sum(info.file_size for info in archive.infolist())
                source = archive.read(handler) if handler in self.bundle_names else None
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
            return f"cannot be read as a zip ({getattr(exc, 'strerror', None) or exc})"
        if source is None:
            return f"has no {handler}: it is not a bundle of the runner"
        if f"def {function}(".encode() not in source:
            return f"has a {handler} without `def {function}(` (the handler {spec.HANDLER})"
        if unzipped > MAX_UNZIPPED_BYTES:
            return (f"unzips to {unzipped:,} bytes, over Lambda's {MAX_UNZIPPED_BYTES:,} "
                    "for a function and its layers")
        return None
