"""Refusals made before anything changes: a standby, an unconfirmed destructive downgrade.

A downgrade's dropped tables are read from its offline SQL, before the lock; their
rows are counted under it, on the run's own connection.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alquimista_schema.errors import DowngradeRefused, ReadOnlyReplica

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

_DROP_TABLE = re.compile(r"^\s*DROP TABLE (?:IF EXISTS )?([\w.\"]+)", re.IGNORECASE | re.MULTILINE)


def dropped_tables(script: ScriptDirectory, start: str | None, dest: str) -> list[str]:
    """Return the tables the downgrade from ``start`` to ``dest`` drops, from its offline SQL.

    Rendered with a bare MigrationContext (not an EnvironmentContext), so it also works
    from inside env.py, where Alembic's ``context`` proxy is in use.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={
        "as_sql": True, "output_buffer": buffer, "literal_binds": True})
    with Operations.context(context):
        for step in script._downgrade_revs(dest, start):
            step.revision.module.downgrade()
    return list(dict.fromkeys(m.strip('"') for m in _DROP_TABLE.findall(buffer.getvalue())))


def confirmation(target: str) -> str:
    """Say how each door repeats ``target`` as confirmation."""
    return (f"--confirm {target} (CLI), -x confirm={target} (alembic) or "
            f'"confirm": "{target}" (event)')


def refuse_in_prod(environment: str, what: str, target: str, confirm: str | None) -> None:
    """Refuse (changing nothing) a destructive verb in prod unless ``confirm`` repeats it."""
    if environment == "prod" and confirm != target:
        raise DowngradeRefused(
            f"{what} refused in prod: it can destroy data; nothing was changed. Repeat the "
            f"target as confirmation: {confirmation(target)}")


def authorise_downgrade(conn: Connection, dropped: list[str], target: str,
                        confirm: str | None) -> None:
    """Refuse (changing nothing) a downgrade that drops tables holding rows, unconfirmed."""
    if confirm == target or not dropped:
        return
    full = []
    for table in dropped:
        exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar()
        if exists is not None and conn.execute(
                text(f'SELECT EXISTS (SELECT 1 FROM "{table}")')).scalar():
            full.append(table)
    if conn.in_transaction():
        conn.commit()
    if full:
        raise DowngradeRefused(
            f"downgrade to {target} would drop table(s) holding rows: {', '.join(full)}; "
            f"nothing was changed. To drop them, repeat the target as confirmation: "
            f"{confirmation(target)}")


def guard_replica(conn: Connection) -> None:
    """Refuse a standby: it cannot be migrated, and its writer is elsewhere."""
    in_recovery = conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
    conn.commit()
    if in_recovery:
        raise ReadOnlyReplica(
            "connected to a read-only replica (pg_is_in_recovery() is true): point the URL "
            "or the secret's host at the cluster's writer endpoint")
