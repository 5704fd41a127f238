"""IAM database authentication: no password at all, a signed token for each connection.

Aurora PostgreSQL accepts, as the password of a user granted ``rds_iam``, a token that
boto3 signs locally from the function's role (``generate_db_auth_token``), valid for
15 minutes. :class:`IamUrl` reads like a URL whose password is a fresh token every time
a connection reads it, so each connection (the probe's, the lock's, the run's) signs its
own. No secret is read; TLS is verify-full, as AWS requires for IAM tokens. The token
is never rendered, logged or raised: it shows as ``***`` like any password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.connect.secrets import Credentials
from alquimista_schema.errors import AuthenticationFailed, ConfigurationError

T = TypeVar("T")
REQUIRED = ("DB_HOST", "DB_NAME", "DB_USER", "DB_SSLROOTCERT")


class IamUrl:
    """A connection to ``base`` (no password) signing a fresh token at each read."""

    def __init__(self, base: Dsn, token: Callable[[], str]) -> None:
        self._base = replace(base, password=None)
        self._token = token
        self.tokens = 0
        """How many tokens were signed (one per connection)."""

    host = property(lambda self: self._base.host)
    port = property(lambda self: self._base.port)
    username = property(lambda self: self._base.username)
    database = property(lambda self: self._base.database)
    query = property(lambda self: self._base.query)
    drivername = Dsn.drivername

    @property
    def password(self) -> str:
        self.tokens += 1
        return self._token()

    def render_as_string(self, hide_password: bool = True) -> str:
        if hide_password:
            return replace(self._base, password="***").render_as_string(  # noqa: S106 (the mask)
                hide_password=False)
        return replace(self._base, password=self.password).render_as_string(hide_password=False)

    def __repr__(self) -> str:
        return f"IamUrl({self.render_as_string()!r})"

    __str__ = __repr__


def url_from_env(env: Mapping[str, str], token: Callable[[str, int, str], str]) -> IamUrl:
    """The IAM-authenticated connection named by DB_HOST, DB_PORT, DB_NAME and DB_USER."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ConfigurationError(f"DB_AUTH=iam needs {', '.join(missing)} in the environment "
                                 "(IAM tokens are accepted over verify-full TLS only)")
    port = env.get("DB_PORT") or "5432"
    if not port.isdigit():
        raise ConfigurationError("DB_PORT must be a port number")
    base = Dsn(host=env["DB_HOST"], port=int(port), username=env["DB_USER"], password=None,
               database=env["DB_NAME"],
               query={"sslmode": "verify-full", "sslrootcert": env["DB_SSLROOTCERT"]})
    return IamUrl(base, lambda: token(base.host or "", base.port or 5432, base.username or ""))


def signer(region: str | None, client: Any = None) -> Callable[[str, int, str], str]:
    """Sign tokens with boto3's RDS client (locally: no call leaves the process)."""
    def sign(host: str, port: int, user: str) -> str:
        nonlocal client
        if client is None:
            from alquimista_schema.connect import rds

            client = rds.client(region, failure=AuthenticationFailed)
        return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))
    return sign


class IamCredentials:
    """Credentials for the runner (as SecretCache): the IAM URL, nothing fetched."""

    def __init__(self, url: IamUrl) -> None:
        self.fetches = 0
        self.cached: Credentials | None = Credentials(url, None, "iam")

    def call(self, fn: Callable[[Credentials], T], *, deadline: float | None = None,
             on_refetch: Callable[[], None] | None = None) -> T:
        assert self.cached is not None
        return fn(self.cached)
