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
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeadlineExceeded,
    SecretUnavailable,
)

T = TypeVar("T")

SECRET_ENV = "DB_SECRET_ARN"  # noqa: S105 (the name of a variable, not a secret)
# Bounded so an unreachable endpoint fails well inside a Lambda's time, not at its kill.
SECRETS_CONNECT_TIMEOUT = 3
SECRETS_READ_TIMEOUT = 5
SECRETS_MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Credentials:
    url: Dsn
    """SQLAlchemy-free (see dsn.py): a cold no-op never imports SQLAlchemy."""
    secret_version: str | None
    source: str = "secretsmanager"
    """``extension`` (the Parameters and Secrets layer) or ``secretsmanager`` (boto3)."""


# AWS's Parameters and Secrets Lambda Extension: a layer serving GetSecretValue's JSON
# on localhost, cached, so a warm or cold start needs no boto3 import and no TLS call.
EXTENSION_PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
EXTENSION_TIMEOUT = 2.0


class _ExtensionUnavailable(Exception):
    """The extension did not serve the secret; the caller falls back to boto3."""


def fetch_from_extension(secret_id: str, port: int, token: str | None,
                         timeout: float = EXTENSION_TIMEOUT) -> dict[str, Any]:
    """Return GetSecretValue's response as the extension serves it (raise to fall back)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"secretId": secret_id})
    request = urllib.request.Request(
        f"http://localhost:{port}/secretsmanager/get?{query}",
        headers={"X-Aws-Parameters-Secrets-Token": token or ""})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except (OSError, ValueError) as exc:  # HTTPError, URLError and timeouts are OSErrors
        # Not chained: an HTTP error object holds the response, which may hold the secret.
        raise _ExtensionUnavailable(type(exc).__name__) from None
    if not isinstance(body, dict):
        raise _ExtensionUnavailable("not a JSON object")
    return body


def secrets_client(session: Any = None, region: str | None = None,
                   within: float | None = None) -> Any:
    """Return a Secrets Manager client with short timeouts and few retries.

    The region comes from the runtime's environment (``AWS_REGION`` on Lambda), else
    from the secret's ARN; the endpoint may be overridden the way boto3 reads it
    (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, for a local endpoint).
    """
    import boto3  # deferred: the CLI without --secret-arn never needs it
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    connect: float = SECRETS_CONNECT_TIMEOUT
    read: float = SECRETS_READ_TIMEOUT
    attempts = SECRETS_MAX_ATTEMPTS
    if within is not None:  # one attempt that ends within ``within`` seconds
        connect = read = max(within / 2 - 0.25, 0.5)
        attempts = 1
    # total_max_attempts counts the first try too (max_attempts would add a retry).
    config = Config(connect_timeout=connect, read_timeout=read,
                    retries={"total_max_attempts": attempts, "mode": "standard"})
    session = session or boto3.session.Session()
    # boto3 reads AWS_DEFAULT_REGION; the Lambda runtime (and many shells) set AWS_REGION.
    fallback = os.environ.get("AWS_REGION") or region
    try:
        return session.client("secretsmanager", config=config,
                              region_name=None if session.region_name else fallback)
    except NoRegionError:
        raise ConfigurationError(
            "no AWS region: set AWS_REGION (the Lambda runtime sets it), or give the secret's "
            "full ARN, which names its region") from None


def arn_region(secret_id: str) -> str | None:
    """Return the region named in a secret ARN (arn:aws:secretsmanager:REGION:...)."""
    parts = secret_id.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


class _NoSecretBodies(logging.Filter):
    """Drop log records that carry a secret's value (botocore logs bodies at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot render is not ours to judge
            return True
        return "SecretString" not in message and "SecretBinary" not in message


_FILTER = _NoSecretBodies()


def silence_secret_bodies() -> None:
    """Attach the filter to every botocore/urllib3 logger (a Lambda at DEBUG logs bodies).

    Filters act only on records made by the logger they are attached to, so each
    existing logger of those libraries gets one; botocore makes its loggers at import.
    """
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if n.split(".")[0] in ("botocore", "boto3", "urllib3")]
    for name in ["botocore", *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def fetch_secret(secret_id: str, client: Any) -> tuple[dict[str, Any], str | None]:
    """Return the secret's JSON and its version id, from Secrets Manager through boto3."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    silence_secret_bodies()
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
    return parse_secret(secret_id, response)


def parse_secret(secret_id: str, response: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                       str | None]:
    """Return the secret's JSON object and version id from a GetSecretValue response."""
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
                    *, name: str = "the secret") -> Dsn:
    """Build the connection from the secret's fields (any password character is safe)."""
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
    bad = [k for k, v in (("username", username), ("password", password), ("host", host),
                          ("dbname", dbname)) if "\x00" in str(v)]
    if bad:  # the driver cannot send a NUL: say which field, never its value
        raise SecretUnavailable(f"{name} has a NUL character in its {', '.join(bad)}")
    engine = secret.get("engine")
    if engine not in (None, "postgres", "postgresql", "aurora-postgresql"):
        # Shown only when it looks like an engine name: a broken secret may hold anything.
        shown = repr(engine) if isinstance(engine, str) and re.fullmatch(
            r"[a-z0-9-]{1,30}", engine) else "that is not an engine name"
        raise SecretUnavailable(f"{name} is for engine {shown}, not PostgreSQL")
    try:
        port_number = int(port) if port else 5432
    except (TypeError, ValueError):
        raise SecretUnavailable(f"{name} has a port that is not a number") from None
    query: dict[str, str] = {"sslmode": "require"}
    ca_bundle = env.get("DB_SSLROOTCERT")
    if ca_bundle:
        query = {"sslmode": "verify-full", "sslrootcert": ca_bundle}
    if "@" in str(host) or "/" in str(host):
        raise SecretUnavailable(f"{name} has a host that is not a host name")
    return Dsn(host=str(host), port=port_number, username=str(username),
               password=str(password), database=str(dbname), query=query)


# A fetch may take up to connect + read timeout, twice (one retry); with less time left,
# one shorter attempt is made, and none at all below MIN_FETCH_SECONDS.
SECRETS_WORST_CASE = SECRETS_MAX_ATTEMPTS * (SECRETS_CONNECT_TIMEOUT + SECRETS_READ_TIMEOUT)
MIN_FETCH_SECONDS = 2.0


class SecretCache:
    """Fetch the secret once per warm container; fetch again after refused credentials."""

    def __init__(self, secret_id: str, client_factory: Any = secrets_client,
                 env: Mapping[str, str] | None = None) -> None:
        self.secret_id = secret_id
        self._client_factory = client_factory
        self._client: Any = None
        self._env = env
        self._cached: Credentials | None = None
        self.fetches = 0

    @property
    def cached(self) -> Credentials | None:
        """The credentials fetched last (None before the first fetch)."""
        return self._cached

    def get(self, *, refresh: bool = False, deadline: float | None = None) -> Credentials:
        """Return the credentials; fetch them when not cached (or ``refresh``).

        ``deadline`` (``time.monotonic()``) bounds the fetch: with less time left than a
        slow Secrets Manager could take, it is not started (DeadlineExceeded).
        """
        if self._cached is None or refresh:
            # A refresh follows refused credentials: the extension's cache may still hold
            # the password from before a rotation, so ask Secrets Manager itself.
            found = None if refresh else self._from_extension(deadline)
            source = "extension" if found is not None else "secretsmanager"
            secret, version = found or fetch_secret(self.secret_id, self._client_for(deadline))
            self.fetches += 1
            self._cached = Credentials(
                url_from_secret(secret, self._env, name=f"secret {self.secret_id!r}"), version,
                source)
        return self._cached

    def _from_extension(self, deadline: float | None) -> tuple[dict[str, Any],
                                                                str | None] | None:
        """The secret from the Parameters and Secrets extension, or None to use boto3."""
        env = os.environ if self._env is None else self._env
        port = env.get(EXTENSION_PORT_ENV, "")
        if not port.isdigit():
            return None
        timeout = EXTENSION_TIMEOUT if deadline is None else \
            max(min(EXTENSION_TIMEOUT, deadline - time.monotonic()), 0.1)
        try:
            response = fetch_from_extension(self.secret_id, int(port),
                                            env.get("AWS_SESSION_TOKEN"), timeout)
        except _ExtensionUnavailable:
            return None
        return parse_secret(self.secret_id, response)

    def _client_for(self, deadline: float | None) -> Any:
        """The cached client, or a one-attempt client that ends before ``deadline``."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < MIN_FETCH_SECONDS:
            raise DeadlineExceeded(
                f"too little time left to fetch secret {self.secret_id!r} ({max(left, 0):.1f}s "
                "before the deadline's margin); raise the function's timeout")
        if left is not None and left < SECRETS_WORST_CASE:
            return self._client_factory(region=arn_region(self.secret_id), within=left)
        if self._client is None:
            self._client = self._client_factory(region=arn_region(self.secret_id))
        return self._client

    def call(self, fn: Callable[[Credentials], T], *, deadline: float | None = None,
             on_refetch: Callable[[], None] | None = None) -> T:
        """Call ``fn`` with the credentials; after refused credentials, fetch once more.

        The password may have been rotated since this process cached it.
        """
        try:
            return fn(self.get(deadline=deadline))
        except AuthenticationFailed:
            if on_refetch is not None:
                on_refetch()
            return fn(self.get(refresh=True, deadline=deadline))
