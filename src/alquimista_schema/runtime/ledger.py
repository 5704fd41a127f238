"""The checksum of every applied revision, recorded when it is applied, and verified.

A table of the runner's own (like ``alembic_version`` and the audit table: invisible to
autogenerate and ``check``): one row per applied revision, written in the revision's
own transaction (Alembic's ``on_version_apply`` runs inside it), so a revision and its
checksum commit or roll back together; a downgrade removes the row. Adoption and stamp
record the checksums of the revisions they mark as applied. ``verify`` compares the
rows with the revision files carried (script/checksums.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alquimista_schema.script import checksums, directory

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

TABLE = "alquimista_schema_checksums"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    revision text PRIMARY KEY,
    checksum text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    how text NOT NULL,
    request_id text
)
"""
_UPSERT = text(f"""
    INSERT INTO {TABLE} (revision, checksum, how, request_id)
    VALUES (:revision, :checksum, :how, :request_id)
    ON CONFLICT (revision) DO UPDATE SET checksum = EXCLUDED.checksum,
        recorded_at = now(), how = EXCLUDED.how, request_id = EXCLUDED.request_id
""")


def ensure_table(conn: Connection) -> None:
    """Create the table on first use, before any revision runs, and commit.

    Only when missing: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when
    the table exists (PostgreSQL 15 grants that to the schema's owner only).
    """
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": TABLE}).scalar() is None:
        conn.exec_driver_sql(_DDL)
    conn.commit()


def carried(script: ScriptDirectory) -> dict[str, str]:
    """The checksum of every revision file carried, by revision."""
    return {rev.revision: checksums.of_file(rev.path) for rev in directory.chain(script)}


def recorder(script: ScriptDirectory, request_id: str) -> Callable[..., None]:
    """An ``on_version_apply`` callback: record (or, going down, remove) each revision's
    checksum in the revision's own transaction."""
    known = carried(script)

    def record(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        if not step.is_migration:
            return
        conn: Connection = ctx.connection
        if step.is_upgrade:
            revision = step.up_revision_id
            conn.execute(_UPSERT, {"revision": revision, "checksum": known[revision],
                                   "how": "applied", "request_id": request_id})
        else:
            conn.execute(text(f"DELETE FROM {TABLE} WHERE revision = :r"),
                         {"r": step.up_revision_id})

    return record


def record_applied(conn: Connection, script: ScriptDirectory, at: str | None, how: str,
                   request_id: str) -> None:
    """After a stamp or an adoption: the revisions now marked applied get their checksum
    where none is recorded, and rows of revisions no longer applied go."""
    applied = directory.applied(script, at)
    known = carried(script)
    recorded = _recorded(conn)
    for revision in applied:
        if revision not in recorded:
            conn.execute(_UPSERT, {"revision": revision, "checksum": known[revision],
                                   "how": how, "request_id": request_id})
    gone = [r for r in recorded if r not in applied and r in known]
    if gone:
        conn.execute(text(f"DELETE FROM {TABLE} WHERE revision = ANY(:gone)"), {"gone": gone})
    conn.commit()


def _recorded(conn: Connection) -> dict[str, dict[str, Any]]:
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": TABLE}).scalar() is None:
        return {}
    rows = conn.execute(text(f"SELECT revision, checksum, recorded_at, how FROM {TABLE}"))
    return {r.revision: {"checksum": r.checksum, "recorded_at": r.recorded_at, "how": r.how}
            for r in rows}


@dataclass(frozen=True)
class Check:
    """One applied revision, checked."""

    revision: str
    status: str
    """``ok``, ``mismatch`` (edited since it was applied), ``unrecorded`` (applied before
    checksums were kept) or ``not_carried`` (applied here, absent from these files)."""
    recorded: str | None = None
    carried: str | None = None
    recorded_at: datetime | None = None
    how: str | None = None

    def describe(self) -> str:
        """One line, as the doors show it."""
        when = f" (recorded {self.recorded_at:%Y-%m-%d %H:%M:%S %Z}, {self.how})" \
            if self.recorded_at else ""
        return {
            "ok": f"{self.revision}: ok",
            "mismatch": f"{self.revision}: edited after it was applied: recorded "
                        f"{self.recorded}, the file now {self.carried}{when}",
            "unrecorded": f"{self.revision}: no checksum recorded (applied before checksums "
                          "were kept)",
            "not_carried": f"{self.revision}: applied here, but not in these revision files",
        }[self.status]


@dataclass(frozen=True)
class Verification:
    """The database's applied revisions against the revision files carried."""

    at: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[Check]:
        """Revisions edited since they were applied, and applied ones not carried."""
        return [c for c in self.checks if c.status in ("mismatch", "not_carried")]


def verify(conn: Connection, script: ScriptDirectory) -> Verification:
    """Compare the checksums recorded for the applied revisions with the files carried."""
    raw = directory.current_heads(script, conn, known=False)
    at = directory.one(raw)
    recorded = _recorded(conn)
    if conn.in_transaction():
        conn.commit()
    known = carried(script)
    checks = [_check(rev, recorded.get(rev), known[rev])
              for rev in directory.applied(script, at if at in known else None)]
    strangers = [r for r in {*recorded, *raw} if r not in known]
    checks += [Check(r, "not_carried", (recorded.get(r) or {}).get("checksum"))
               for r in sorted(strangers)]
    return Verification(at, checks)


def _check(revision: str, row: dict[str, Any] | None, now: str) -> Check:
    if row is None:
        return Check(revision, "unrecorded", None, now)
    status = "ok" if row["checksum"] == now else "mismatch"
    return Check(revision, status, row["checksum"], now, row["recorded_at"], row["how"])


def accept(conn: Connection, script: ScriptDirectory, checks: list[Check],
           request_id: str) -> list[str]:
    """Record the files' checksums for ``checks`` edited since they were applied."""
    known = carried(script)
    accepted = [c.revision for c in checks if c.status == "mismatch"]
    for revision in accepted:
        conn.execute(_UPSERT, {"revision": revision, "checksum": known[revision],
                               "how": "accepted", "request_id": request_id})
    conn.commit()
    return accepted
