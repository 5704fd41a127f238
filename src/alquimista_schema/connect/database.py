"""Opening connections, and turning driver errors into the package's errors."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.connect import dsn
from alquimista_schema.connect.dsn import Dsn, UrlLike
from alquimista_schema.connect.sessions import KEEPALIVES, first_line
from alquimista_schema.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DatabaseUnreachable,
    LockTimeout,
    PermissionDenied,
    ReadOnlyReplica,
    SchemaError,
)

APPLICATION_NAME = "alquimista-schema"
DEFAULT_CONNECT_TIMEOUT = 10


def parse_url(url: str | UrlLike) -> URL:
    """Return ``url`` as a SQLAlchemy URL for psycopg2, or raise ConfigurationError.

    Parsed by :func:`dsn.parse`, the one URL grammar (the no-op probe uses it without
    SQLAlchemy). No message quotes the URL: it holds a password.
    """
    found = url if isinstance(url, Dsn) else dsn.parse(
        url if isinstance(url, str) else url.render_as_string(hide_password=False))
    return URL.create(dsn.DRIVERNAME, username=found.username, password=found.password,
                      host=found.host, port=found.port, database=found.database,
                      query=dict(found.query))


def describe_connect_error(url: URL, exc: DBAPIError) -> SchemaError:
    """Translate a failed connection into a specific, password-free error."""
    where = f"{url.host or 'localhost'}:{5432 if url.port is None else url.port}"
    raw = str(exc.orig) if exc.orig is not None else str(exc)
    text = raw.lower()  # matched in lower case, quoted as the driver said it
    said = raw.strip().splitlines()[0] if raw.strip() else ""
    # "password authentication failed", "PAM authentication failed", ...
    if "authentication failed" in text or "no password supplied" in text:
        return AuthenticationFailed(
            f"PostgreSQL at {where} refused the credentials of user {url.username!r}: "
            "check the user name and password (or the secret they come from)")
    if "does not exist" in text and "database" in text:
        named = repr(url.database) if url.database else \
            f"{url.username!r} (the URL names none: PostgreSQL takes the user's name)"
        return ConfigurationError(
            f"database {named} does not exist on {where}: create it, or fix the URL")
    if text.startswith("invalid dsn"):  # libpq refused the URL itself: no retry mends it
        return ConfigurationError(
            f"libpq refused the database URL's options ({_option(said)}): each key after "
            "'?' must be a libpq connection parameter (sslmode, sslrootcert, "
            "connect_timeout, options, ...); fix or remove it")
    if "certificate" in text or "ssl" in text:
        return DatabaseUnreachable(
            f"TLS with PostgreSQL at {where} failed ({said}): for "
            "Aurora, set DB_SSLROOTCERT to the RDS CA bundle; the server must offer TLS",
            retryable=False)
    if "timeout" in text or "timed out" in text:
        reason = "no answer before the connect timeout"
    elif "could not translate host name" in text or "name or service not known" in text:
        reason = "the host name does not resolve"
    elif "connection refused" in text:
        reason = "connection refused"
    else:
        reason = said or "connection failed"
    return DatabaseUnreachable(
        f"cannot reach PostgreSQL at {where} ({reason}): check that the server is running "
        "and the host and port are right; from a Lambda, that the cluster's security group "
        "admits 5432 from the function's security group and the function's subnets route "
        "to the cluster")


def _option(said: str) -> str:
    """libpq's complaint, quoting the option only when it looks like one (a word)."""
    found = re.search(r'invalid connection option "([A-Za-z_]{1,40})"', said)
    return f"unknown option {found.group(1)!r}" if found else "an option it does not accept"


@contextmanager
def connect(url: str | UrlLike, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
            application_name: str = APPLICATION_NAME, budget: float = 0.0,
            deadline: float | None = None, adopt: Any = None) -> Iterator[Connection]:
    """Open one connection (no pool) to ``url``; close it on exit.

    An unreachable host is tried again with backoff while ``budget`` seconds last
    (and never past ``deadline``, a ``time.monotonic()`` value): an auto-paused
    Aurora Serverless v2 instance takes 15 to 30 s to answer its first connection.
    Refused credentials are never retried here.
    """
    parsed = parse_url(url)
    if adopt is not None:
        # An open psycopg2 connection to the same URL (the fast path's): saves a connect.
        adopt.autocommit = False  # SQLAlchemy manages the transactions
        engine = create_engine(parsed, poolclass=pool.NullPool, creator=lambda: adopt)
        conn = engine.connect()
    else:
        conn = _open(parsed, connect_timeout, application_name, budget, deadline)
    with conn:
        try:
            yield conn
        except DBAPIError as exc:  # outside a revision: a revision's own is translated
            raise refused(exc, parsed) from exc


def open_driver(url: str | UrlLike, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
                application_name: str = APPLICATION_NAME) -> Any:
    """One more DBAPI connection to ``url``, in autocommit, for a watcher's queries
    (runtime/lockwaits.py); the caller closes it. One attempt, no retry. (The pool's
    proxy is returned, not psycopg2's own connection: the pool closes that one as soon
    as its proxy is dropped.)"""
    engine = create_engine(parse_url(url), poolclass=pool.NullPool, connect_args={
        "connect_timeout": max(connect_timeout, MIN_ATTEMPT_SECONDS),
        "application_name": application_name[:63], **KEEPALIVES})
    proxy = engine.raw_connection()
    driver: Any = proxy.driver_connection
    driver.autocommit = True
    return proxy


def refused(exc: DBAPIError, url: URL) -> SchemaError:
    """What the database refused outside a revision (reading alembic_version, the
    runner's tables, the catalogue), in one line that names it and what to do."""
    code = getattr(exc.orig, "pgcode", None)
    said = first_line(exc)
    where = f"{url.host or 'localhost'}:{5432 if url.port is None else url.port}"
    kind, advice = _REFUSALS.get(code or "", (SchemaError, None))
    return kind(f"PostgreSQL at {where} refused user {url.username!r}: {said}"
                + (f" ({advice})" if advice else f" (SQLSTATE {code or 'unknown'})"))


# SQLSTATE -> (error, what to do). Anything else keeps its SQLSTATE, never "a bug".
_REFUSALS: dict[str, tuple[type[SchemaError], str]] = {
    "42501": (PermissionDenied,
              "grant the privilege on the object named, e.g. GRANT SELECT, INSERT, UPDATE, "
              "DELETE ON alembic_version TO the migration role; or run as the schema's owner"),
    "25006": (ReadOnlyReplica, "connected to a reader: use the cluster's writer endpoint"),
    "57014": (SchemaError, "cancelled by statement_timeout, or by an administrator"),
    "55P03": (LockTimeout, "another session holds a conflicting lock; run again later"),
}


# libpq waits at least 2 s per attempt (and forever for 0): an attempt needs this much.
MIN_ATTEMPT_SECONDS = 2


def _attempt_timeout(configured: int, limit: float | None, url: URL) -> int:
    """Seconds one attempt may take: the configured value, cut to the time left."""
    if limit is None:
        return max(configured, MIN_ATTEMPT_SECONDS)
    left = int(limit - time.monotonic())
    if left < MIN_ATTEMPT_SECONDS:
        raise DatabaseUnreachable(
            f"no time left to connect to PostgreSQL at {url.host or 'localhost'}:"
            f"{url.port or 5432} within the budget (or before the deadline)", retryable=False)
    return max(min(configured, left), MIN_ATTEMPT_SECONDS)


def _open(url: URL, attempt_timeout: int, application_name: str, budget: float,
          deadline: float | None) -> Connection:
    start = time.monotonic()
    limit = start + max(budget, 0.0)
    if deadline is not None:
        limit = min(limit, deadline)
    attempts, delay = 0, 1.0
    while True:
        attempts += 1
        # The budget bounds retries; an attempt itself is bounded by the deadline only.
        timeout = _attempt_timeout(attempt_timeout, deadline, url)
        engine = create_engine(url, poolclass=pool.NullPool, connect_args={
            "connect_timeout": timeout, "application_name": application_name[:63],
            **KEEPALIVES})
        try:
            return engine.connect()
        except DBAPIError as exc:
            error = describe_connect_error(url, exc)
            engine.dispose()
            if not isinstance(error, DatabaseUnreachable) or not error.retryable:
                raise error from exc
            if time.monotonic() + delay + 2 > limit:
                if attempts > 1:
                    elapsed = time.monotonic() - start
                    raise DatabaseUnreachable(
                        f"{error} (after {attempts} attempts over {elapsed:.0f}s)") from exc
                raise error from exc
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
