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


# Another of the runner's sessions still holding a table lock once this run has the
# migration lock: a killed run's work session, whose statement goes on until the server
# notices its client is gone (client_connection_check_interval, set on every work session).
_ORPHANS = """
    SELECT a.pid, a.application_name, l.mode, l.relation::regclass::text,
           extract(epoch FROM now() - a.xact_start)::int
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation' AND l.granted AND l.mode <> 'AccessShareLock'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND a.application_name LIKE %(app)s AND a.pid <> pg_backend_pid()
     ORDER BY a.pid
"""
ORPHAN_WAIT_SECONDS = 10.0  # several check intervals: the orphan ends well within it


def await_orphans(conn: Any, *, wait_seconds: float = ORPHAN_WAIT_SECONDS) -> None:
    """With the lock held, wait for an earlier run's orphaned statement to end; if it
    does not in time, say whose it is (never "traffic")."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while rows := fetch(conn, _ORPHANS, {"app": "alquimista-schema%"}):
        if time.monotonic() >= deadline:
            pid, app, mode, table, open_for = rows[0]
            raise LockTimeout(
                f"an earlier run's session still holds {mode} on {table} (pid {pid}, "
                f"application_name {app!r}, transaction open {open_for}s) although the "
                f"migration lock is free: its client is gone (killed?) and PostgreSQL ends "
                f"it when it next checks the connection; waited {round(wait_seconds, 1):g}s. Run "
                f"again shortly, or end it: SELECT pg_terminate_backend({pid})")
        time.sleep(_POLL_SECONDS)


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
                f"{round(wait_seconds, 1):g}s. Let it finish (or end that session), then retry")
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
    try:
        await_orphans(conn, wait_seconds=min(ORPHAN_WAIT_SECONDS,
                                             max(deadline - time.monotonic(), 0.0) + 2.0))
        yield
    finally:
        # Never let the unlock hide what happened while the lock was held.
        unlock(conn)
