"""The runner's own history: one row per run that changed something or failed.

Like ``alembic_version``, the table belongs to the runner, not to the models, so
autogenerate and ``check`` never see it. Rows are written on the lock connection,
outside the migration transactions, so a rolled-back revision still leaves its
failure on record. Written through psycopg2 (the lock connection is a driver connection),
the way every runner-owned table is written (runtime/owned.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg2

from alquimista_schema.connect.sessions import first_line
from alquimista_schema.errors import SchemaError
from alquimista_schema.runtime import owned
from alquimista_schema.runtime.run import Progress, Run

log = logging.getLogger(__name__)

TABLE = "alquimista_schema_audit"
AUDIT = owned.Owned(TABLE, {
    "id": "bigserial PRIMARY KEY",
    "request_id": "text NOT NULL",
    "actor": "text NOT NULL",
    "action": "text NOT NULL",
    "target": "text",
    "from_revision": "text",
    "to_revision": "text",
    "applied": "jsonb NOT NULL DEFAULT '[]'::jsonb",
    "outcome": "text NOT NULL",
    "error_code": "text",
    "error": "text",
    "secret_version": "text",
    "duration_ms": "double precision",
    owned.STAMP: "timestamptz NOT NULL DEFAULT now()",
    "snapshot": "text",
    "restore_point": "timestamptz",
    "attempts": "jsonb NOT NULL DEFAULT '[]'::jsonb",
}, key="id", later=("snapshot", "restore_point", "attempts"))
# See unconsumed(): the row naming the snapshot first, then no change from it on.
_UNCONSUMED = f"""
    SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE snapshot = %(s)s) AND NOT EXISTS (
           SELECT 1 FROM {TABLE}
            WHERE id >= (SELECT min(id) FROM {TABLE} WHERE snapshot = %(s)s)
              AND (applied <> '[]'::jsonb OR from_revision IS DISTINCT FROM to_revision))
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
    snapshot: str | None = None
    restore_point: datetime | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Each failed attempt at a revision that was tried again (runtime/lockwaits.py)."""


RUNNING = "running"
"""The outcome of a row whose run has not ended: a run killed (SIGKILL, a Lambda timeout)
leaves it so, with how far it got."""


@contextmanager
def audited(conn: Any, run: Run, target: str | None, started: float) -> Iterator[Progress]:
    """Yield the run's Progress; record it on ``conn`` whatever happens (see entry_for),
    and hand it to the package's error as its ``progress``.

    The row is written when the run starts (outcome ``running``), brought up to date as
    each revision commits, and completed at the end; a run that must leave no trace has
    its row removed then. So a run killed at any point leaves a true record.
    """
    progress = Progress()
    # Not created for a run that may leave no trace: a missing table waits for the first
    # revision committed (or the end).
    rows = [start_safely(conn, entry_for(run, target, progress, None, started, RUNNING),
                         progress, create=False)]

    def follow() -> None:
        running = entry_for(run, target, progress, None, started, RUNNING)
        if rows[0] is None:
            rows[0] = start_safely(conn, running, progress)
        else:
            update_safely(conn, rows[0], running, progress)

    progress.on_recorded = follow
    outcome: BaseException | None = None
    try:
        yield progress
    except BaseException as exc:
        outcome = exc
        raise
    finally:
        final = entry_for(run, target, progress, outcome, started)
        if rows[0] is not None:
            update_safely(conn, rows[0], final, progress)
        elif final is not None:
            start_safely(conn, final, progress)
        if isinstance(outcome, SchemaError):
            outcome.progress = progress.result()


def entry_for(run: Run, target: str | None, progress: Progress,
              outcome: BaseException | None, started: float,
              status: str = "success") -> Entry | None:
    """Return the audit row for a run, or None when it must leave no trace (``status``
    ``running``: the row of a run under way, always written)."""
    entry = Entry(run.request_id, run.actor, run.action, target, progress.from_revision,
                  progress.to_revision, status, secret_version=run.secret_version,
                  applied=[asdict(a) for a in progress.applied],
                  duration_ms=round((time.monotonic() - started) * 1000, 1),
                  snapshot=progress.snapshot, restore_point=progress.restore_point,
                  attempts=list(progress.attempts))
    if isinstance(outcome, SchemaError):
        entry.outcome, entry.error_code, entry.error = "error", outcome.code, str(outcome)
    elif outcome is not None:  # never audit an unexpected failure as a success
        entry.outcome, entry.error_code = "error", "INTERNAL_ERROR"
        entry.error = f"{type(outcome).__name__}: {outcome}"[:500]
    failed = entry.outcome == "error" and progress.traced
    keep = failed or entry.applied or progress.changed or status == RUNNING
    return entry if keep else None


def record(conn: Any, entry: Entry, *, create: bool = True) -> int | None:
    """Append ``entry`` (creating the table on first use, unless ``create`` is False:
    then None when it is missing), commit; return its id."""
    if not owned.ensure(conn, AUDIT, create=create):
        return None
    return int(owned.insert(conn, AUDIT, vars(entry)))


def start_safely(conn: Any, entry: Entry | None, progress: Progress, *,
                 create: bool = True) -> int | None:
    """Write a run's row; None if it is not (the table is missing and not ``create``;
    or it cannot be written: a warning)."""
    if entry is None:
        return None
    written: int | None = _safely(conn, progress, entry,
                                  lambda: record(conn, entry, create=create))
    return written


def update_safely(conn: Any, row: int, entry: Entry | None, progress: Progress) -> None:
    """Bring row ``row`` up to date with ``entry``; None: the run leaves no trace."""
    if entry is None:
        _safely(conn, progress, None, lambda: owned.delete(conn, AUDIT, [row]))
        return
    _safely(conn, progress, entry, lambda: owned.update(conn, AUDIT, row, vars(entry)))


def _safely(conn: Any, progress: Progress, entry: Entry | None,
            write: Callable[[], Any]) -> Any:
    """Run ``write`` without ever changing the run's outcome: permission denied, or the
    lock connection died, the connection is rolled back (so the unlock can run) and the
    problem lands in ``progress.warnings`` and the log, once."""
    try:
        return write()
    except psycopg2.Error as exc:
        with contextlib.suppress(psycopg2.Error):
            conn.rollback()
        problem = f"the audit row was not written: {first_line(exc)}"
        if problem not in progress.warnings:  # once per run, however often it is tried
            progress.warnings.append(problem)
            log.warning("%s (request %s)", problem, entry.request_id if entry else "?")
        return None


def unconsumed(conn: Any, snapshot: str) -> bool:
    """Whether no run has changed the database since the run that made ``snapshot``.

    The rule, on one clock (the audit's own order, not RDS's and PostgreSQL's times): a
    row names the snapshot (the run that made it records it, even when it stopped
    waiting), and no row from the first of those on applied a revision or moved the
    version (a stamp). The rows are written under the migration lock, so their order is
    the runs' order. No row (the audit could not be written or read) is "consumed": a
    new snapshot is taken, never a stale one reused. Changes made outside the runner
    are not seen. ``conn``: as for :func:`entries`.
    """
    conn = _driver(conn)
    try:
        if not owned.present(conn, AUDIT):
            return False
        [(fresh,)] = owned.execute(conn, _UNCONSUMED, {"s": snapshot})
    except psycopg2.Error as exc:
        log.warning("the audit could not be read: %s", first_line(exc))
        return False
    return bool(fresh)


def _driver(conn: Any) -> Any:
    """A psycopg2 connection: SQLAlchemy's own, its transaction committed first."""
    if hasattr(conn, "exec_driver_sql"):
        if conn.in_transaction():
            conn.commit()
        conn = conn.connection.driver_connection
    return conn


def entries(conn: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Return the latest audit rows, newest first (empty when the table is absent).

    ``conn`` is a psycopg2 connection or a SQLAlchemy one.
    """
    conn = _driver(conn)  # SQLAlchemy's: read through its driver connection
    return owned.rows(conn, AUDIT, "ORDER BY id DESC LIMIT %(n)s", {"n": limit})
