"""The no-op fast path: "already at head?" in one query, without Alembic.

A deployment pipeline invokes the runner on every deploy, and almost always the
database is already at head. The head comes from the manifest (no revision module
is loaded) and one round trip reads the version table and the replica flag; only
when the answer is not a plain "at head" does the full path run. The connection is
kept for warm invocations and dropped on any error.
"""

from __future__ import annotations

import contextlib
from typing import Any

from alquimista_schema import scripts

_QUERY = "SELECT pg_is_in_recovery(), (SELECT array_agg(version_num) FROM alembic_version)"
_cached: dict[str, Any] = {}


def _key(url: Any) -> str:
    return str(url.render_as_string(hide_password=False))


def at_head(url: Any, *, connect_timeout: int = 10, application_name: str = "alquimista-schema"
            ) -> str | None:
    """Return the head revision if the database is plainly at it, else None.

    None means "take the full path": no manifest, a replica, another revision, no
    version table, or any error (the full path reports errors properly).
    """
    head = scripts.known_head()
    if head is None:
        return None
    import psycopg2  # deferred; about 5 ms, against several hundred for SQLAlchemy + Alembic

    key = _key(url)
    conn = _cached.get(key)
    try:
        if conn is None or conn.closed:
            conn = psycopg2.connect(
                host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                dbname=url.database, connect_timeout=connect_timeout,
                application_name=application_name[:63], **dict(url.query))
            conn.autocommit = True
            _cached.clear()
            _cached[key] = conn
        with conn.cursor() as cur:
            cur.execute(_QUERY)
            in_recovery, versions = cur.fetchone()
    except psycopg2.errors.UndefinedTable:
        return None  # an unversioned database; the connection is fine (see take())
    except psycopg2.Error:
        drop()
        return None
    if in_recovery or versions != [head]:
        return None
    return head


def take(url: Any, application_name: str) -> Any:
    """Hand over the open connection to ``url`` (the full path reuses it), or None.

    Only a connection this run opened (same application_name) is handed over, so a
    warm container never runs a migration on a connection it did not just check.
    """
    conn = _cached.pop(_key(url), None)
    if conn is None or conn.closed:
        return None
    if conn.get_dsn_parameters().get("application_name") != application_name[:63]:
        _cached[_key(url)] = conn
        return None
    return conn


def drop() -> None:
    """Close and forget the cached connection."""
    for conn in _cached.values():
        with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
            conn.close()
    _cached.clear()
