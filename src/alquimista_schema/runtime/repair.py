"""Before an upgrade applies anything: drop what a cancelled concurrent index build left.

A ``CREATE INDEX CONCURRENTLY`` that fails or is cancelled (a timeout, a duplicate in a
unique index, a signal) leaves an INVALID index behind, and a re-run's ``IF NOT EXISTS``
"succeeds" over it while the index stays unusable. So at the start of every upgrade, an
INVALID index that a pending revision creates is dropped concurrently (on a session of
its own, outside any transaction, within ``lock_timeout``), and the revision builds it for
real. An INVALID index no pending revision creates is left alone: ``check`` reports it.

Which indexes a revision creates is read from its source (the names in ``CREATE [UNIQUE]
INDEX [CONCURRENTLY] [IF NOT EXISTS] name`` and in ``op.create_index("name", ...)``) and,
when an INVALID index is there at all, from its SQL rendered offline, where a name built
at run time is spelt out. A revision that cannot render offline (it reads the database)
and builds its index's name at run time is not seen: the index stays, ``check`` names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import Connection

from alquimista_schema.connect.sessions import first_line
from alquimista_schema.errors import SchemaError
from alquimista_schema.runtime import stepping
from alquimista_schema.schema import introspect


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_CREATED = re.compile(
    r"""CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?\\?"?(\w+)"""
    r"""|create_index\(\s*(?:op\.f\(\s*)?["'](\w+)["']""", re.IGNORECASE)


def created_by(paths: Iterable[str], rendered: Iterable[str] = ()) -> set[str]:
    """The names of the indexes the revision files at ``paths`` create (``rendered``: their
    SQL, rendered offline)."""
    texts = [*(Path(path).read_text(encoding="utf-8") for path in paths), *rendered]
    return {(match.group(1) or match.group(2)).lower()
            for text_ in texts for match in _CREATED.finditer(text_)}


def drop_invalid(conn: Connection, steps: list[Any], open_session: Callable[[], Any],
                 lock_timeout: str) -> list[str]:
    """Drop each INVALID index that one of ``steps`` (pending revisions) creates; return
    what was done, one line each, for the run's warnings."""
    invalid = introspect.invalid_indexes(conn)
    conn.commit()
    if not invalid:  # every upgrade's path: one query
        return []
    wanted = created_by((step.revision.path for step in steps),
                        (sql for _, sql in stepping.render_upgrades(steps)))
    dropping = [(index, table) for index, table in invalid if index.lower() in wanted]
    if not dropping:
        return []
    # the side session's search_path may differ: name the schema
    schema = str(conn.execute(text("SELECT current_schema()")).scalar())
    conn.commit()
    try:
        session = open_session()
        try:
            with session.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
                for index, _ in dropping:
                    cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(schema)}."
                                f"{_quoted(index)}")
        finally:
            session.close()
    except (psycopg2.Error, SchemaError) as exc:
        names = ", ".join(index for index, _ in dropping)
        raise SchemaError(
            f"the INVALID index(es) {names} could not be dropped ({first_line(exc)}); nothing "
            f"was applied. Drop each by hand (DROP INDEX CONCURRENTLY {schema}.<name>) and run "
            "again") from exc
    return [f"dropped the INVALID index {index} on {table} (left by a failed or cancelled "
            "CREATE INDEX CONCURRENTLY), so the pending revision that creates it builds it "
            "for real" for index, table in dropping]
