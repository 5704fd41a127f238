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
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from alquimista_schema.connect.dsn import Dsn, UrlLike
from alquimista_schema.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeadlineExceeded,
    SecretUnavailable,
)

if TYPE_CHECKING:
    import http.client

    from _typeshed import ReadableBuffer, WriteableBuffer

T = TypeVar("T")

SECRET_ENV = "DB_SECRET_ARN"  # noqa: S105 (the name of a variable, not a secret)


@dataclass(frozen=True)
class Credentials:
    url: UrlLike
    """SQLAlchemy-free (a Dsn, see dsn.py; or iam.IamUrl): a cold no-op never imports it."""
    secret_version: str | None
    source: str = "secretsmanager"
    """``extension`` (the Parameters and Secrets layer), ``secretsmanager`` (boto3),
    ``iam`` (a signed token per connection) or ``DATABASE_URL`` (outside Lambda)."""


# AWS's Parameters and Secrets Lambda Extension: a layer serving GetSecretValue's JSON
# on localhost, cached, so a warm or cold start needs no boto3 import and no TLS call.
EXTENSION_PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
EXTENSION_ADDRESS = "127.0.0.1"
"""Where the extension listens: the loopback address itself, so no resolver, no proxy
(``HTTP_PROXY`` and the like are never read) and no other host can be asked."""
EXTENSION_TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 (a header's name)
EXTENSION_TIMEOUT = 2.0
"""The whole exchange (connect, request, status, headers, body), not each socket read:
a server dripping one byte a second is cut off at this deadline."""
EXTENSION_MAX_BYTES = 1024 * 1024
"""GetSecretValue's answer, as JSON: a secret is at most 64 KiB, escaping included
well under this; a longer answer is refused before it is held in memory."""


class _ExtensionUnavailable(Exception):
    """The extension did not serve the secret (the message says why, never with the
    secret); the caller falls back to Secrets Manager through boto3."""


def _loopback_connection(port: int, deadline: float) -> http.client.HTTPConnection:
    """HTTP to the extension on 127.0.0.1, every socket operation within ``deadline``.

    http.client follows no redirect and reads no proxy variable: a 3xx is an answer like
    any other non-200, and the token never goes anywhere but the loopback address.
    (Imported here: a cold start that never asks the extension never loads http.client
    and ssl, about 7 ms.)
    """
    import http.client
    import socket

    class DeadlineSocket(socket.socket):
        """Each send and receive gets only the time left before the one deadline."""

        def time_left(self) -> None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the extension's deadline passed")
            self.settimeout(left)

        def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
            self.time_left()
            return super().recv_into(buffer, nbytes, flags)

        def recv(self, bufsize: int, flags: int = 0) -> bytes:
            self.time_left()
            return super().recv(bufsize, flags)

        def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
            self.time_left()
            super().sendall(data, flags)

    class LoopbackConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = DeadlineSocket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.time_left()
                sock.connect((EXTENSION_ADDRESS, port))
            except BaseException:
                sock.close()
                raise
            self.sock = sock

    return LoopbackConnection("localhost", port)  # the Host header AWS documents


def fetch_from_extension(secret_id: str, port: int, token: str | None,
                         timeout: float = EXTENSION_TIMEOUT) -> dict[str, Any]:
    """Return GetSecretValue's response as the extension serves it (raise to fall back).

    Bounded: 127.0.0.1 only, no proxy, no redirect, ``timeout`` seconds for the whole
    exchange, at most EXTENSION_MAX_BYTES of body.
    """
    if not 0 < port < 65536:
        raise _ExtensionUnavailable(f"{EXTENSION_PORT_ENV}={port} is not a TCP port")
    import http.client
    import urllib.parse

    query = urllib.parse.urlencode({"secretId": secret_id})
    connection = _loopback_connection(port, time.monotonic() + timeout)
    try:
        connection.request("GET", f"/secretsmanager/get?{query}", headers={
            EXTENSION_TOKEN_HEADER: token or "", "Accept": "application/json",
            "Connection": "close"})
        body = _read_answer(connection.getresponse())
        value = json.loads(body)
    except TimeoutError:
        raise _ExtensionUnavailable(f"no complete answer within {timeout:.1f}s") from None
    except ConnectionRefusedError:
        raise _ExtensionUnavailable(f"nothing listens on {EXTENSION_ADDRESS}:{port}") from None
    except (OSError, http.client.HTTPException, ValueError, RecursionError) as exc:
        # Not chained, and only the type: an error may hold the body, which may hold the secret.
        raise _ExtensionUnavailable(f"its answer could not be read ({type(exc).__name__})") \
            from None
    finally:
        connection.close()
    if not isinstance(value, dict):
        raise _ExtensionUnavailable("its answer is not a JSON object")
    return value


def _read_answer(answer: http.client.HTTPResponse) -> bytes:
    """The body of a 200 answer, refused past EXTENSION_MAX_BYTES (announced or sent)."""
    if answer.status != 200:
        kind = "a redirect, which is never followed" if 300 <= answer.status < 400 \
            else "not the secret"
        raise _ExtensionUnavailable(f"it answered HTTP {answer.status} ({kind})")
    announced = answer.getheader("Content-Length", "")
    if announced.strip().isdigit() and int(announced) > EXTENSION_MAX_BYTES:
        raise _ExtensionUnavailable(f"its answer would be {int(announced):,} bytes, over "
                                    f"the {EXTENSION_MAX_BYTES:,} a secret can take")
    chunks, size = [], 0
    while chunk := answer.read(64 * 1024):
        size += len(chunk)
        if size > EXTENSION_MAX_BYTES:
            raise _ExtensionUnavailable(f"its answer went past the {EXTENSION_MAX_BYTES:,} "
                                        "bytes a secret can take")
        chunks.append(chunk)
    return b"".join(chunks)


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
    """Build the connection from the secret's fields (any password character is safe);
    ``env``: what the door read from its environment (DB_HOST, DB_SSLROOTCERT...) to fill
    the fields the secret lacks. Nothing here reads the process's environment."""
    env = {} if env is None else env

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
        port_number = int(port) if port not in (None, "") else 5432
    except (TypeError, ValueError):
        raise SecretUnavailable(f"{name} has a port that is not a number") from None
    if not 0 < port_number < 65536:
        raise SecretUnavailable(f"{name} has a port outside 1 to 65535")
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
        self._env: Mapping[str, str] = {} if env is None else env  # the door's environment
        self._cached: Credentials | None = None
        self.fetches = 0
        self.extension_problem: str | None = None
        """Why the extension did not serve the secret at the last fetch (None: it did,
        or it is not configured)."""

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
            self.extension_problem = None
            found = None if refresh else self._from_extension(deadline)
            source = "extension" if found is not None else "secretsmanager"
            secret, version = found or self._fallback(deadline)
            self.fetches += 1
            self._cached = Credentials(
                url_from_secret(secret, self._env, name=f"secret {self.secret_id!r}"), version,
                source)
        return self._cached

    def _from_extension(self, deadline: float | None) -> tuple[dict[str, Any],
                                                                str | None] | None:
        """The secret from the Parameters and Secrets extension, or None to use boto3.

        The extension gets at most EXTENSION_TIMEOUT, and leaves the fallback its
        MIN_FETCH_SECONDS before ``deadline`` (with not even that left, half of the rest).
        """
        port = self._env.get(EXTENSION_PORT_ENV, "").strip()
        if not port:
            return None
        budget = EXTENSION_TIMEOUT
        if deadline is not None:
            left = deadline - time.monotonic()
            spare = left - MIN_FETCH_SECONDS - 0.25  # and a quarter second for closing up
            budget = min(EXTENSION_TIMEOUT, spare if spare > 0.1 else left / 2)
        try:
            if not port.isdigit():
                raise _ExtensionUnavailable(f"{EXTENSION_PORT_ENV}={port[:20]!r} is not a port")
            if budget <= 0.05:
                raise _ExtensionUnavailable("no time left to ask it before the deadline")
            response = fetch_from_extension(self.secret_id, int(port),
                                            self._env.get("AWS_SESSION_TOKEN"), budget)
        except _ExtensionUnavailable as exc:
            self.extension_problem = str(exc)
            import logging  # only now: the runner's own log is JSON lines, not logging

            logging.getLogger(__name__).warning(
                "the Parameters and Secrets extension did not serve secret %r (%s); asking "
                "Secrets Manager directly", self.secret_id, exc)
            return None
        return parse_secret(self.secret_id, response)

    def _fallback(self, deadline: float | None) -> tuple[dict[str, Any], str | None]:
        """Secrets Manager; if it fails too, its error also says why the extension did."""
        try:
            return self._from_secrets_manager(deadline)
        except (SecretUnavailable, DeadlineExceeded, ConfigurationError) as exc:
            if not self.extension_problem:
                raise
            raise type(exc)(f"{exc} (the Parameters and Secrets extension did not serve it "
                            f"either: {self.extension_problem})") from exc

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
