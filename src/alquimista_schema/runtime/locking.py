"""The migration lock: a PostgreSQL advisory lock held on a dedicated connection.

A session-level advisory lock on its own connection survives the commits and
rollbacks of the migration transactions, and PostgreSQL releases it by itself when
that connection dies (a killed Lambda never leaves it behind). Waiting is bounded,
and a timeout names the holder.

The lock connection is the psycopg2 connection under a SQLAlchemy one (the run
skeleton hands it over), used for nothing else.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2

from alquimista_schema.connect.sessions import fetch, first_line
from alquimista_schema.errors import DatabaseUnreachable, LockTimeout

# pg_advisory_lock(bigint) key: "alquimia" in ASCII, fixed for every release.
LOCK_KEY = 0x616C7175696D6961
_POLL_SECONDS = 0.2

_HOLDER = """
    SELECT a.pid, a.application_name, a.backend_start, a.client_addr
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
           SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = ((%(key)s >> 32) & x'ffffffff'::bigint)::oid
       AND l.objid = (%(key)s & x'ffffffff'::bigint)::oid
       AND l.objsubid = 1
"""


def holder(conn: Any) -> str | None:
    """Say who holds the migration lock now, or None when nobody does (reads pg_locks)."""
    return describe_holder(conn) if fetch(conn, _HOLDER, {"key": LOCK_KEY}) else None


def describe_holder(conn: Any) -> str:
    """Say who holds the migration lock, for an error message."""
    rows = fetch(conn, _HOLDER, {"key": LOCK_KEY})
    if not rows:
        return "a session that has just released it"
    pid, app, since, addr = rows[0]
    # pg_stat_activity shows anyone a session's pid and application_name; the rest of
    # another role's session (a DBA's) is NULL to the migrator.
    facts = [f"application_name {app!r}"]
    if since is not None:
        facts.append(f"connected since {since:%Y-%m-%d %H:%M:%S %Z}")  # timestamptz: aware
    if addr:
        facts.append(f"from {addr}")
    return f"pid {pid} ({', '.join(facts)})"


def try_lock(conn: Any) -> bool:
    """Try once; a connection lost while waiting is the database's fault, not ours."""
    try:
        [(got,)] = fetch(conn, "SELECT pg_try_advisory_lock(%(key)s)", {"key": LOCK_KEY})
    except psycopg2.Error as exc:
        raise DatabaseUnreachable(
            f"lost the connection to PostgreSQL while waiting for the migration lock "
            f"({first_line(exc)}): nothing was changed; retry when the server is back") from exc
    return bool(got)


def unlock(conn: Any) -> None:
    """Release the lock; if that cannot run, closing the connection releases it anyway."""
    with contextlib.suppress(psycopg2.Error):
        if not conn.closed:
            if not conn.autocommit:
                conn.rollback()
            fetch(conn, "SELECT pg_advisory_unlock(%(key)s)", {"key": LOCK_KEY})


@contextmanager
def migration_lock(conn: Any, *, wait_seconds: float) -> Iterator[None]:
    """Hold the migration lock on ``conn`` (a psycopg2 connection used for nothing else)."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        if try_lock(conn):
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another migration holds the lock: {describe_holder(conn)}; waited "
                f"{wait_seconds:.0f}s. Let it finish (or end that session), then retry")
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
    try:
        yield
    finally:
        # Never let the unlock hide what happened while the lock was held.
        unlock(conn)
