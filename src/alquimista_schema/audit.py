"""The runner's own history: one row per run that changed something or failed.

Like ``alembic_version``, the table belongs to the runner, not to the models, so
autogenerate and ``check`` never see it. Rows are written on the lock connection,
outside the migration transactions, so a rolled-back revision still leaves its
failure on record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "alquimista_schema_audit"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    request_id text NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    from_revision text,
    to_revision text,
    applied jsonb NOT NULL DEFAULT '[]'::jsonb,
    outcome text NOT NULL,
    error_code text,
    error text,
    secret_version text,
    duration_ms double precision,
    recorded_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass
class Entry:
    request_id: str
    actor: str
    action: str
    target: str | None
    from_revision: str | None
    to_revision: str | None
    outcome: str
    applied: list[dict[str, Any]] = field(default_factory=list)
    error_code: str | None = None
    error: str | None = None
    secret_version: str | None = None
    duration_ms: float | None = None


def record(conn: Connection, entry: Entry) -> None:
    """Append ``entry`` (creating the table on first use) and commit.

    The table is created only when missing: CREATE TABLE IF NOT EXISTS needs CREATE
    on the schema even when the table exists (PostgreSQL 15 grants it to owners only).
    """
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": TABLE}).scalar() is None:
        conn.exec_driver_sql(_DDL)
    values = {**entry.__dict__, "applied": json.dumps(entry.applied)}
    conn.execute(text(
        f"INSERT INTO {TABLE} (request_id, actor, action, target, from_revision, to_revision, "
        "applied, outcome, error_code, error, secret_version, duration_ms) VALUES "
        "(:request_id, :actor, :action, :target, :from_revision, :to_revision, "
        "CAST(:applied AS jsonb), :outcome, :error_code, :error, :secret_version, :duration_ms)"),
        values)
    conn.commit()


def entries(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """Return the latest audit rows, newest first (empty when the table is absent)."""
    if conn.execute(text(f"SELECT to_regclass('{TABLE}')")).scalar() is None:
        return []
    rows = conn.execute(text(f"SELECT * FROM {TABLE} ORDER BY id DESC LIMIT :n"), {"n": limit})
    return [dict(r._mapping) for r in rows]
