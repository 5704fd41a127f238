"""The runner's own tables (the audit, the checksum ledger): defined, created and written one way.

Like ``alembic_version`` they belong to the runner, not to the models, so autogenerate
and ``check`` never see them. They are written on two kinds of connection: the audit on
the lock connection (psycopg2, autocommit, outside the migration transactions), the
ledger inside a revision's own transaction (SQLAlchemy's). One text serves both: the
driver's ``%(name)s`` parameters, which SQLAlchemy's ``exec_driver_sql`` hands to the
same driver unchanged. Nothing here commits a SQLAlchemy transaction: its owner does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from alquimista_schema.connect.sessions import fetch

STAMP = "recorded_at"
"""Every owned table has it: set to now() by every write."""


@dataclass(frozen=True)
class Owned:
    """One runner-owned table: its columns in order (name → type and constraints), its
    key, and the columns added after the first release (added on first use)."""

    name: str
    columns: Mapping[str, str]
    key: str
    later: tuple[str, ...] = ()

    def ddl(self) -> str:
        body = ",\n".join(f"    {column} {kind}" for column, kind in self.columns.items())
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n{body}\n)"

    def bound(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` as the driver takes them: a jsonb column's value as JSON (dates as text)."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.name} has no column {sorted(unknown)}")
        return {k: Json(v, dumps=_dumps) if self.columns[k].startswith("jsonb") else v
                for k, v in values.items()}


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def execute(conn: Any, sql: str, params: Mapping[str, Any] | None = None
            ) -> list[tuple[Any, ...]]:
    """Run ``sql`` on either kind of connection; return its rows.

    A psycopg2 connection's transaction is ended (``fetch``); a SQLAlchemy one's is left
    to its owner (a revision's checksum commits or rolls back with the revision).
    """
    if not hasattr(conn, "exec_driver_sql"):
        return fetch(conn, sql, dict(params) if params else None)
    # No parameters: none passed, so the driver reads no % in the text as a placeholder.
    result = conn.exec_driver_sql(sql, dict(params)) if params else conn.exec_driver_sql(sql)
    return [tuple(row) for row in result] if result.returns_rows else []


def present(conn: Any, table: Owned) -> bool:
    [(oid,)] = execute(conn, "SELECT to_regclass(%(t)s)", {"t": table.name})
    return oid is not None


_SHAPE = """
    SELECT to_regclass(%(t)s) IS NOT NULL, ARRAY(
           SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(%(t)s)
              AND attname::text = ANY(%(c)s) AND NOT attisdropped)
"""


def ensure(conn: Any, table: Owned, *, create: bool = True) -> bool:
    """Make ``table`` ready to write: created when missing (unless ``create`` is False:
    then False), the later columns added to a table an earlier release made.

    Created only when missing: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even
    when the table exists (PostgreSQL 15 grants that to the schema's owner only).
    """
    [(exists, present_later)] = execute(conn, _SHAPE, {"t": table.name,
                                                       "c": list(table.later)})
    if not exists:
        if create:
            execute(conn, table.ddl())
        return create
    for column in (c for c in table.later if c not in present_later):
        execute(conn, f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {column} "
                      f"{table.columns[column]}")
    return True


def insert(conn: Any, table: Owned, values: Mapping[str, Any], *,
           upsert: bool = False) -> Any:
    """Insert one row; return its key. ``upsert``: a row with the same key is replaced."""
    names = [*values, STAMP]
    places = [f"%({name})s" for name in values] + ["now()"]
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(places)})")
    if upsert:
        sql += f" ON CONFLICT ({table.key}) DO UPDATE SET " + ", ".join(
            f"{name} = EXCLUDED.{name}" for name in names if name != table.key)
    [(key,)] = execute(conn, f"{sql} RETURNING {table.key}", table.bound(values))
    return key


def update(conn: Any, table: Owned, key: Any, values: Mapping[str, Any]) -> None:
    """Bring the row ``key`` up to date with ``values``."""
    sets = [f"{name} = %({name})s" for name in values] + [f"{STAMP} = now()"]
    execute(conn, f"UPDATE {table.name} SET {', '.join(sets)} "
                  f"WHERE {table.key} = %(_key)s", {**table.bound(values), "_key": key})


def delete(conn: Any, table: Owned, keys: Iterable[Any]) -> None:
    """Remove the rows of ``keys``."""
    execute(conn, f"DELETE FROM {table.name} WHERE {table.key} = ANY(%(keys)s)",
            {"keys": list(keys)})


_COLUMNS = """
    SELECT attname::text FROM pg_attribute
     WHERE attrelid = to_regclass(%(t)s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""


def rows(conn: Any, table: Owned, tail: str = "", params: Mapping[str, Any] | None = None,
         columns: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read ``table``'s rows as dicts (``tail``: WHERE, ORDER BY, LIMIT ...); [] when it is
    absent. Every column it has, or those of ``columns`` it has: a table an earlier
    release made may lack the later ones until a run writes to it."""
    have = [name for (name,) in execute(conn, _COLUMNS, {"t": table.name})]
    names = [c for c in columns if c in have] if columns else have
    if not names:
        return []
    found = execute(conn, f"SELECT {', '.join(names)} FROM {table.name} {tail}", params)
    return [dict(zip(names, row, strict=True)) for row in found]


# Each right on its own: with a list, has_table_privilege is true if ANY is held.
_WRITABLE = "SELECT " + " AND ".join(
    f"has_table_privilege(CAST(%(t)s AS regclass), '{right}')"
    for right in ("SELECT", "INSERT", "UPDATE", "DELETE"))


def writable(conn: Any, table: Owned) -> bool:
    """Whether this role may read and write the (existing) ``table``."""
    [(ok,)] = execute(conn, _WRITABLE, {"t": table.name})
    return bool(ok)
