"""The migration lock: a PostgreSQL advisory lock held on a dedicated connection.

A session-level advisory lock on its own connection survives the commits and
rollbacks of the migration transactions, and PostgreSQL releases it by itself when
that connection dies (a killed Lambda never leaves it behind). Waiting is bounded,
and a timeout names the holder.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.errors import DatabaseUnreachable, LockTimeout

# pg_advisory_lock(bigint) key: "alquimia" in ASCII, fixed for every release.
LOCK_KEY = 0x616C7175696D6961
_POLL_SECONDS = 0.2

_HOLDER = text("""
    SELECT a.pid, a.application_name, a.backend_start, a.client_addr
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
           SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = ((:key >> 32) & x'ffffffff'::bigint)::oid
       AND l.objid = (:key & x'ffffffff'::bigint)::oid
       AND l.objsubid = 1
""")


def describe_holder(conn: Connection) -> str:
    """Say who holds the migration lock, for an error message."""
    row = conn.execute(_HOLDER, {"key": LOCK_KEY}).first()
    if conn.in_transaction():
        conn.commit()
    if row is None:
        return "a session that has just released it"
    pid, app, since, addr = row
    # pg_stat_activity hides all but the pid of another role's session (a DBA's).
    facts = [f"application_name {app!r}" if app is not None else "a session of another role"]
    if since is not None:
        facts.append(f"connected since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip())
    if addr:
        facts.append(f"from {addr}")
    return f"pid {pid} ({', '.join(facts)})"


def _try_lock(conn: Connection) -> bool:
    """Try once; a connection lost while waiting is the database's fault, not ours."""
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
        conn.commit()
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnreachable(
            f"lost the connection to PostgreSQL while waiting for the migration lock "
            f"({reason}): nothing was changed; retry when the server is back") from exc
    return bool(got)


@contextmanager
def migration_lock(conn: Connection, *, wait_seconds: float) -> Iterator[None]:
    """Hold the migration lock on ``conn`` (a connection used for nothing else)."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        if _try_lock(conn):
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another migration holds the lock: {describe_holder(conn)}; waited "
                f"{wait_seconds:.0f}s. Let it finish (or end that session), then retry")
        time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
    try:
        yield
    finally:
        # If the unlock cannot run, closing the connection releases the lock anyway;
        # never let it hide what happened while the lock was held.
        with contextlib.suppress(DBAPIError):
            if not conn.closed and not conn.invalidated:
                if conn.in_transaction():
                    conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                conn.commit()
