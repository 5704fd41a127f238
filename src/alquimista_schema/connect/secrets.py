"""From a Secrets Manager secret (RDS format) to a database URL, cached per container.

The secret is ``{"username", "password", "host", "port", "dbname", "engine"}``.
RDS-managed master secrets carry only ``username`` and ``password``; then
``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` supply the rest. **The secret wins** when
both name a value (it is managed with the cluster); the environment only fills gaps.

TLS is always on: ``sslmode=verify-full`` against ``DB_SSLROOTCERT`` when that CA
bundle is configured, ``require`` otherwise. Nothing here logs or raises with the
password in it. The secret comes from AWS's Parameters and Secrets extension when its
layer is there (over localhost, no boto3), else from Secrets Manager through boto3
(secretsmanager.py, imported only then).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import (
    AuthenticationFailed,
    DeadlineExceeded,
    SecretUnavailable,
)

T = TypeVar("T")

SECRET_ENV = "DB_SECRET_ARN"  # noqa: S105 (the name of a variable, not a secret)


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


# With less time left than a slow Secrets Manager could take, one shorter attempt is
# made (see secretsmanager.WORST_CASE), and none at all below MIN_FETCH_SECONDS.
MIN_FETCH_SECONDS = 2.0


class SecretCache:
    """Fetch the secret once per warm container; fetch again after refused credentials."""

    def __init__(self, secret_id: str, client_factory: Callable[..., Any] | None = None,
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
            secret, version = found or self._from_secrets_manager(deadline)
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

    def _from_secrets_manager(self, deadline: float | None) -> tuple[dict[str, Any],
                                                                      str | None]:
        """The secret from Secrets Manager itself, through boto3 (imported only now)."""
        from alquimista_schema.connect import secretsmanager

        response = secretsmanager.get_secret_value(self.secret_id,
                                                   self._client_for(deadline, secretsmanager))
        return parse_secret(self.secret_id, response)

    def _client_for(self, deadline: float | None, secretsmanager: Any) -> Any:
        """The cached client, or a one-attempt client that ends before ``deadline``."""
        factory = self._client_factory or secretsmanager.client
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < MIN_FETCH_SECONDS:
            raise DeadlineExceeded(
                f"too little time left to fetch secret {self.secret_id!r} ({max(left, 0):.1f}s "
                "before the deadline's margin); raise the function's timeout")
        region = secretsmanager.arn_region(self.secret_id)
        if left is not None and left < secretsmanager.WORST_CASE:
            return factory(region=region, within=left)
        if self._client is None:
            self._client = factory(region=region)
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
