"""From a Secrets Manager secret (RDS format) to a database URL.

The secret is ``{"username", "password", "host", "port", "dbname", "engine"}``.
RDS-managed master secrets carry only ``username`` and ``password``; then
``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` supply the rest. **The secret wins** when
both name a value (it is managed with the cluster); the environment only fills gaps.

TLS is always on: ``sslmode=verify-full`` against ``DB_SSLROOTCERT`` when that CA
bundle is configured, ``require`` otherwise. Nothing here logs or raises with the
password in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from alquimista_schema.errors import ConfigurationError, SecretUnavailable

SECRET_ENV = "DB_SECRET_ARN"  # noqa: S105 (the name of a variable, not a secret)
# Bounded so an unreachable endpoint fails well inside a Lambda's time, not at its kill.
SECRETS_CONNECT_TIMEOUT = 3
SECRETS_READ_TIMEOUT = 5
SECRETS_MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Credentials:
    url: URL
    secret_version: str | None


def secrets_client(session: Any = None, region: str | None = None) -> Any:
    """Return a Secrets Manager client with short timeouts and few retries.

    The region comes from the runtime's environment (``AWS_REGION`` on Lambda), else
    from the secret's ARN; the endpoint may be overridden the way boto3 reads it
    (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, for a local endpoint).
    """
    import boto3  # deferred: the CLI without --secret-arn never needs it
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(connect_timeout=SECRETS_CONNECT_TIMEOUT, read_timeout=SECRETS_READ_TIMEOUT,
                    retries={"max_attempts": SECRETS_MAX_ATTEMPTS, "mode": "standard"})
    session = session or boto3.session.Session()
    try:
        return session.client("secretsmanager", config=config,
                              region_name=None if session.region_name else region)
    except NoRegionError:
        raise ConfigurationError(
            "no AWS region: set AWS_REGION (the Lambda runtime sets it), or give the secret's "
            "full ARN, which names its region") from None


def arn_region(secret_id: str) -> str | None:
    """Return the region named in a secret ARN (arn:aws:secretsmanager:REGION:...)."""
    parts = secret_id.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def fetch_secret(secret_id: str, client: Any) -> tuple[dict[str, Any], str | None]:
    """Return the secret's JSON and its version id."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = {
            "ResourceNotFoundException": "no such secret: check its name or ARN and the region",
            "AccessDeniedException": "the function's role may not read it (secretsmanager:"
                                     "GetSecretValue, and kms:Decrypt for its key)",
            "DecryptionFailure": "its KMS key cannot be used by the function's role",
        }.get(code, code or "request refused")
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {hint}") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise SecretUnavailable(
            f"cannot reach Secrets Manager for secret {secret_id!r} ({type(exc).__name__}): "
            "functions in isolated subnets need a Secrets Manager VPC endpoint whose security "
            "group admits HTTPS (443) from the function's security group") from exc
    raw = response.get("SecretString")
    if not isinstance(raw, str):
        raise SecretUnavailable(f"secret {secret_id!r} has no SecretString (binary secrets "
                                "are not supported)")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        # Not chained on purpose: the decode error carries the whole secret as its .doc.
        raise SecretUnavailable(f"secret {secret_id!r} is not JSON; expected the RDS format "
                                '{"username", "password", "host", "port", "dbname"}') from None
    if not isinstance(value, dict):
        raise SecretUnavailable(f"secret {secret_id!r} is not a JSON object")
    return value, response.get("VersionId")


def url_from_secret(secret: Mapping[str, Any], env: Mapping[str, str] | None = None,
                    *, name: str = "the secret") -> URL:
    """Build the URL with ``URL.create`` (so any password character is safe)."""
    env = os.environ if env is None else env

    def pick(key: str, env_key: str) -> Any:
        value = secret.get(key)
        return value if value not in (None, "") else env.get(env_key) or None

    username, password = secret.get("username"), secret.get("password")
    missing = [k for k, v in (("username", username), ("password", password)) if not v]
    host, port, dbname = pick("host", "DB_HOST"), pick("port", "DB_PORT"), pick("dbname",
                                                                                "DB_NAME")
    if not host:
        missing.append("host (or DB_HOST)")
    if not dbname:
        missing.append("dbname (or DB_NAME)")
    if missing:
        raise SecretUnavailable(f"{name} lacks {', '.join(missing)}")
    engine = secret.get("engine")
    if engine not in (None, "postgres", "postgresql", "aurora-postgresql"):
        raise SecretUnavailable(f"{name} is for engine {engine!r}, not PostgreSQL")
    try:
        port_number = int(port) if port else 5432
    except (TypeError, ValueError):
        raise SecretUnavailable(f"{name} has a port that is not a number") from None
    query: dict[str, str] = {"sslmode": "require"}
    ca_bundle = env.get("DB_SSLROOTCERT")
    if ca_bundle:
        query = {"sslmode": "verify-full", "sslrootcert": ca_bundle}
    return URL.create("postgresql+psycopg2", username=str(username), password=str(password),
                      host=str(host), port=port_number, database=str(dbname), query=query)


class SecretCache:
    """Fetch the secret once per warm container; fetch again on demand (rotation)."""

    def __init__(self, secret_id: str, client_factory: Any = secrets_client,
                 env: Mapping[str, str] | None = None) -> None:
        self.secret_id = secret_id
        self._client_factory = client_factory
        self._client: Any = None
        self._env = env
        self._cached: Credentials | None = None
        self.fetches = 0

    def get(self, *, refresh: bool = False) -> Credentials:
        if self._cached is None or refresh:
            if self._client is None:
                self._client = self._client_factory(region=arn_region(self.secret_id))
            secret, version = fetch_secret(self.secret_id, self._client)
            self.fetches += 1
            self._cached = Credentials(
                url_from_secret(secret, self._env, name=f"secret {self.secret_id!r}"), version)
        return self._cached
