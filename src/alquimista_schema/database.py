"""Opening connections, and turning driver errors into the package's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from alquimista_schema.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DatabaseUnreachable,
    SchemaError,
)

APPLICATION_NAME = "alquimista-schema"
DEFAULT_CONNECT_TIMEOUT = 10


def parse_url(url: str | URL) -> URL:
    """Return ``url`` as a SQLAlchemy URL for PostgreSQL, or raise ConfigurationError."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        # The text may hold a password: never echo it.
        raise ConfigurationError(
            "the database URL is not valid; expected postgresql://user:password@host:port/dbname"
        ) from exc
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"the database URL must be a postgresql:// URL, not {parsed.get_backend_name()}://")
    return parsed


def safe_url(url: str | URL) -> str:
    """Render ``url`` with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def describe_connect_error(url: URL, exc: DBAPIError) -> SchemaError:
    """Translate a failed connection into a specific, password-free error."""
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    if "password authentication failed" in text or "authentication failed" in text \
            or "no password supplied" in text:
        return AuthenticationFailed(
            f"PostgreSQL at {where} refused the credentials of user {url.username!r}: "
            "check the user name and password (or the secret they come from)")
    if "does not exist" in text and "database" in text:
        return ConfigurationError(
            f"database {url.database!r} does not exist on {where}: create it, or fix the URL")
    if "timeout" in text or "timed out" in text:
        reason = "no answer before the connect timeout"
    elif "could not translate host name" in text or "name or service not known" in text:
        reason = "the host name does not resolve"
    elif "connection refused" in text:
        reason = "connection refused"
    else:
        reason = text.strip().splitlines()[0] if text.strip() else "connection failed"
    return DatabaseUnreachable(
        f"cannot reach PostgreSQL at {where} ({reason}): check that the server is running "
        "and that the host, port and any firewall or security group admit this client")


@contextmanager
def connect(url: str | URL, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
            application_name: str = APPLICATION_NAME) -> Iterator[Connection]:
    """Open one connection (no pool) to ``url``; close it on exit."""
    parsed = parse_url(url)
    engine = create_engine(
        parsed, poolclass=pool.NullPool,
        connect_args={"connect_timeout": connect_timeout, "application_name": application_name},
    )
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise describe_connect_error(parsed, exc) from exc
        with conn:
            yield conn
    finally:
        engine.dispose()
