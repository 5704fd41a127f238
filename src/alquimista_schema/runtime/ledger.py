"""The checksum of every applied revision, recorded when it is applied, and verified.

A table of the runner's own (like ``alembic_version`` and the audit table: invisible to
autogenerate and ``check``): one row per applied revision, written in the revision's
own transaction (Alembic's ``on_version_apply`` runs inside it), so a revision and its
checksum commit or roll back together; a downgrade removes the row. Adoption and stamp
record the checksums of the revisions they mark as applied. ``verify`` compares the
rows with the revision files carried (script/checksums.py). Written the way every
runner-owned table is (runtime/owned.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.connect.sessions import first_line
from alquimista_schema.errors import SchemaError
from alquimista_schema.runtime import owned
from alquimista_schema.script import checksums, directory

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

TABLE = "alquimista_schema_checksums"
LEDGER = owned.Owned(TABLE, {
    "revision": "text PRIMARY KEY",
    "checksum": "text NOT NULL",
    owned.STAMP: "timestamptz NOT NULL DEFAULT now()",
    "how": "text NOT NULL",
    "request_id": "text",
}, key="revision")


class Ledger:
    """One run's writes to the table. Like the audit row, a checksum that cannot be
    written (a role without CREATE on the schema, or without rights on the table) never
    changes the run's outcome: the rights are checked once when the run opens the ledger
    (one warning, then no writes), and a stamp's or an acceptance's writes are each a
    savepoint whose failure is a warning. A revision's own row is written without a
    savepoint (three round trips fewer per revision), on rights already checked."""

    def __init__(self, conn: Connection, script: ScriptDirectory, request_id: str,
                 warn: Callable[[str], None]) -> None:
        self.conn, self.script, self.request_id, self.warn = conn, script, request_id, warn
        self.usable = True
        self.known = carried(script)

    def open(self) -> Ledger:
        """Create the table on first use (before any revision runs), and commit.

        Only when missing: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when
        the table exists (PostgreSQL 15 grants that to the schema's owner only).
        """
        missing = not owned.present(self.conn, LEDGER)
        if missing and not self._safely(lambda: owned.ensure(self.conn, LEDGER)):
            self.usable = False
        elif not missing and not owned.writable(self.conn, LEDGER):
            self.usable = False
            self.warn(f"checksums were not recorded: this role may not write {TABLE} (grant "
                      "SELECT, INSERT, UPDATE, DELETE on it)")
        self.conn.commit()
        return self

    def _safely(self, write: Callable[[], Any]) -> bool:
        savepoint = self.conn.begin_nested()
        try:
            write()
        except (DBAPIError, SchemaError) as exc:  # SchemaError: the table cannot be read
            savepoint.rollback()
            self.warn(f"checksums were not recorded: {first_line(exc)}")
            return False
        savepoint.commit()
        return True

    def recorder(self) -> Callable[..., None]:
        """An ``on_version_apply`` callback: record (or, going down, remove) each revision's
        checksum in the revision's own transaction."""
        def record(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
            if not step.is_migration or not self.usable:
                return
            revision = step.up_revision_id
            if step.is_upgrade:
                self._upsert(ctx.connection, revision, "applied")
            else:
                owned.delete(ctx.connection, LEDGER, [revision])
        return record

    def record_applied(self, at: str | None, how: str) -> None:
        """After a stamp or an adoption: the revisions now marked applied get their checksum
        where none is recorded, and rows of revisions no longer applied go."""
        if self.usable:
            self._safely(lambda: self._mark(directory.applied(self.script, at), how))
        self.conn.commit()

    def _mark(self, applied: list[str], how: str) -> None:
        recorded = _recorded(self.conn)
        for revision in applied:
            if revision not in recorded:
                self._upsert(self.conn, revision, how)
        gone = [r for r in recorded if r not in applied and r in self.known]
        if gone:
            owned.delete(self.conn, LEDGER, gone)

    def _upsert(self, conn: Connection, revision: str, how: str) -> None:
        owned.insert(conn, LEDGER, {"revision": revision, "checksum": self.known[revision],
                                    "how": how, "request_id": self.request_id}, upsert=True)

    def accept(self, checks: list[Check]) -> list[str]:
        """Record the files' checksums for ``checks`` edited since they were applied."""
        accepted = [c.revision for c in checks if c.status == "mismatch"]
        def write() -> None:
            for revision in accepted:
                self._upsert(self.conn, revision, "accepted")
        written = self._safely(write)
        self.conn.commit()
        return accepted if written else []


class Carried(Mapping[str, str]):
    """The checksum of every revision file carried, by revision, each computed when first
    asked for: a run reads only the files it applies or checks (a fresh database at base
    has none recorded, so an upgrade through 1,000 revisions parses each file once)."""

    def __init__(self, script: ScriptDirectory) -> None:
        self.paths = {rev.revision: rev.path for rev in directory.chain(script)}
        self.sums: dict[str, str] = {}

    def __getitem__(self, revision: str) -> str:
        if revision not in self.sums:
            self.sums[revision] = checksums.of_file(self.paths[revision])
        return self.sums[revision]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def carried(script: ScriptDirectory) -> Carried:
    """The checksum of every revision file carried, by revision, oldest first."""
    return Carried(script)


def _recorded(conn: Connection) -> dict[str, dict[str, Any]]:
    try:
        rows = owned.rows(conn, LEDGER, columns=("revision", "checksum", owned.STAMP, "how"))
    except DBAPIError as exc:
        raise SchemaError(f"cannot read the recorded checksums ({first_line(exc)}): grant "
                          f"SELECT on {TABLE} to this role") from exc
    return {row.pop("revision"): row for row in rows}


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


def verify(conn: Connection, script: ScriptDirectory,
           known: Mapping[str, str] | None = None) -> Verification:
    """Compare the checksums recorded for the applied revisions with the files carried
    (``known``: a run's own :class:`Carried`, so no file is parsed twice)."""
    raw = directory.current_heads(script, conn, known=False)
    at = directory.one(raw)
    try:
        recorded = _recorded(conn)
    except SchemaError:
        conn.rollback()
        raise
    if conn.in_transaction():
        conn.commit()
    known = carried(script) if known is None else known
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
