"""The no-op fast path: "already at head?" in one query, without Alembic.

A deployment pipeline invokes the runner on every deploy, and almost always the
database is already at head. The head comes from the manifest (no revision module
is loaded) and one round trip reads the version table and the replica flag; only
when the answer is not a plain "at head" does the run skeleton take over, on the
very connection that asked (see :func:`probe`). The connection is kept for warm
invocations and dropped on any error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from alquimista_schema.connect import sessions
from alquimista_schema.script import manifest

_QUERY = "SELECT pg_is_in_recovery(), (SELECT array_agg(version_num) FROM alembic_version)"
_cached: dict[str, Any] = {}


@dataclass
class Answer:
    """What the fast path found."""

    head: str | None
    """The head revision when the database is plainly at it; None: let the run skeleton answer."""
    connection: Any = None
    """An open psycopg2 connection now owned by the caller (the run skeleton adopts it)."""

    def open_connection(self) -> Any:
        """The connection handed over, if it is still open (else None)."""
        return self.connection if self.connection is not None \
            and not self.connection.closed else None


def _key(url: Any) -> str:
    return str(url.render_as_string(hide_password=False))


def _open(url: Any, connect_timeout: float, application_name: str) -> Any:
    key = _key(url)
    conn = _cached.get(key)
    if conn is None or conn.closed:
        conn = sessions.connect(url, connect_timeout=connect_timeout,
                                application_name=application_name)
        _cached.clear()
        _cached[key] = conn
    return conn


def probe(url: Any, *, connect_timeout: float = 10, statement_timeout: float = 10,
          application_name: str = "alquimista-schema") -> Answer:
    """Ask "at head?" once, within the given seconds; hand over the connection if not.

    Any error means "let the run skeleton answer" (it reports errors properly).
    """
    head = manifest.known_head()
    if head is None:
        return Answer(None)
    import psycopg2

    budget_ms = max(int(statement_timeout * 1000), 1)
    try:
        conn = _open(url, connect_timeout, application_name)
        with conn.cursor() as cur:
            # One round trip: the bound, then the question.
            cur.execute(f"SET statement_timeout = {budget_ms}; {_QUERY}")
            in_recovery, versions = cur.fetchone()
    except psycopg2.errors.UndefinedTable:
        versions, in_recovery = None, False  # unversioned; the connection is fine
    except psycopg2.Error:
        drop()
        return Answer(None)
    if not in_recovery and versions == [head]:
        return Answer(head)
    return Answer(None, _cached.pop(_key(url), None))


def drop() -> None:
    """Close and forget the cached connection."""
    for conn in _cached.values():
        with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
            conn.close()
    _cached.clear()
