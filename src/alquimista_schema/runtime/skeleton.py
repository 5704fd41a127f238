"""The run skeleton: every change of revision, from every door, runs through it.

plan (before the lock) -> lock -> guards -> audit -> per revision: pace, apply, record
-> release. The verbs (command.py, for the CLI and the Lambda) and the plain ``alembic``
command (environment.py) call :func:`change`; :func:`adopt` is the same skeleton around
a verification and a stamp. One connection holds the lock and writes the audit row
whatever happens; the work runs on a second one, one revision per transaction, in one
Alembic run: the run's own, or the plain ``alembic`` command's (``within``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from alquimista_schema import targets
from alquimista_schema.autogenerate import adoption
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import (
    ChecksumMismatch,
    SchemaError,
    SnapshotFailed,
)
from alquimista_schema.runtime import (
    applying,
    audit,
    effects,
    executors,
    guards,
    interrupts,
    ledger,
    planning,
    repair,
    snapshot,
)
from alquimista_schema.runtime.locking import migration_lock
from alquimista_schema.runtime.run import Change, Progress, Result, Run
from alquimista_schema.runtime.timeouts import session_timeouts
from alquimista_schema.script import directory

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory


log = logging.getLogger(__name__)


RETENTION_SECONDS = 6.0
"""The most the backup retention's lookup may take (one bounded DescribeDBClusters)."""


@contextmanager
def locked(url: Any, run: Run, target: str | None) -> Iterator[Progress]:
    """Connect, refuse a standby, take the lock; audit whatever happens inside.

    The body fills the yielded Progress. A failed audit write never changes the run's
    outcome: the lock connection is rolled back and the problem lands in
    ``Progress.warnings`` (so in the Result, or in the error's ``progress``) and the log.
    """
    started = time.monotonic()
    with connect(url, **run.connect_options()) as opened:
        guards.guard_replica(opened)
        # The lock and the audit row are written through the driver connection.
        lock_conn = opened.connection.driver_connection
        with migration_lock(lock_conn, wait_seconds=run.bounded(run.lock_wait)), \
                audit.audited(lock_conn, run, target, started) as progress:
            yield progress


def change(url: Any, request: Change, run: Run, *, adopt: Any = None,
           within: EnvironmentContext | None = None) -> Result:
    """Make ``request``'s change under the lock; return what was done.

    ``adopt``: an open driver connection to the same database (the no-op probe's).
    ``within``: the plain ``alembic`` command's environment, which then runs the steps.
    """
    guards.refuse_in_prod(run.environment, request.destructive, request.target.text,
                          request.confirm)
    executor = executors.of(within)
    script = executor.script
    directory.resolve(script, request.target.name)
    # A killed run's statement must not outlive its lock (runtime/locking.await_orphans):
    # the server checks the client is still there while a statement runs.
    timeouts = {**run.timeouts(),
                "client_connection_check_interval": applying.CHECK_INTERVAL}
    with connect(url, adopt=adopt, **run.connect_options()) as conn:
        moving = request.action != "stamp"
        route = _route(script, request, conn) if moving else None
        with locked(url, run, request.target.text) as progress, \
                session_timeouts(conn, timeouts, restore=False):
            progress.on_applied = request.on_applied
            with progress.untraced():
                route = _guard(conn, script, request, route, progress)
            book = ledger.Ledger(conn, script, run.request_id, progress.warnings.append).open()
            if route is None:
                _stamp(conn, script, request, progress, executor, book)
            else:
                upgrading = request.action == "upgrade"
                if upgrading:
                    for problem in [*guards.refuse_unlinted(route.scripts, run.lint_policy),
                                    *effects.refuse_busy(conn, route.steps, run.table_policy)]:
                        _warn(progress, problem)
                    _check_ledger(conn, script, request, run, progress, book)
                with interrupts.cancelling(conn.connection.driver_connection,
                                           progress) as stopping:
                    if upgrading:
                        _snapshot(conn, route, run, progress, stopping)
                        _repair(conn, url, route, run, progress)
                        _restore_point(conn, route, run, progress)
                    # A retry goes to where this route ends, never to a relative target
                    # read again from where the retry starts (+2 would overshoot).
                    end = targets.parse(route.end or "base")
                    applying.apply(applying.Work(
                        conn, script, run, progress, book, executor, url, stopping,
                        lambda at: planning.route(script, end, at, upgrade=upgrading),
                        lambda again: _repair(conn, url, again, run, progress)
                        if upgrading else None), route)
                if upgrading:
                    _prune(run, progress)
    return progress.result()


def _route(script: ScriptDirectory, request: Change, conn: Connection) -> planning.Route:
    start = directory.one(directory.current_heads(script, conn))
    return planning.route(script, request.target, start, upgrade=request.action == "upgrade")


def _guard(conn: Connection, script: ScriptDirectory, request: Change,
           route: planning.Route | None, progress: Progress) -> planning.Route | None:
    """Under the lock: where the database is now, and the refusals that leave no trace."""
    if request.action == "stamp":
        # --purge replaces whatever is there, even a revision this release does not know
        found = directory.current_heads(script, conn, known=not request.purge)
        progress.at(directory.described(found) if request.purge else directory.one(found))
        return None
    assert route is not None
    progress.at(directory.one(directory.current_heads(script, conn)))
    if request.action == "upgrade" and progress.from_revision is None:
        guards.refuse_unadopted(conn)
    if progress.from_revision != route.start:  # another run moved it meanwhile
        route = planning.route(script, request.target, progress.from_revision,
                               upgrade=request.action == "upgrade")
    if request.action == "downgrade":
        guards.authorise_downgrade(conn, route.dropped, request.target.text, request.confirm)
    return route


def _stamp(conn: Connection, script: ScriptDirectory, request: Change, progress: Progress,
           executor: executors.Executor, book: ledger.Ledger, *, how: str = "stamped"
           ) -> None:
    """Alembic's own stamp (the executor's way); the revisions it marks applied get their
    checksums recorded."""
    executor.stamp(conn, request.target.text, request.purge)
    progress.to_revision = directory.one(directory.current_heads(script, conn))
    progress.changed = True
    book.record_applied(progress.to_revision, how)


def _check_ledger(conn: Connection, script: ScriptDirectory, request: Change, run: Run,
                  progress: Progress, book: ledger.Ledger) -> None:
    """Applied revisions edited since: accepted when asked, refused in prod, else a warning."""
    try:
        problems = ledger.verify(conn, script, book.known).problems
    except SchemaError as exc:  # the table cannot be read by this role
        if book.usable:  # else opening the ledger has already said why, once
            progress.warnings.append(str(exc))
        return
    if not problems:
        return
    lines = [check.describe() for check in problems]
    if request.accept_checksums:
        accepted = book.accept(problems)
        if accepted:
            progress.changed = True
            progress.warnings.append("accepted the new checksums of " + ", ".join(accepted))
    elif run.environment == "prod":
        raise ChecksumMismatch(
            f"upgrade refused in prod: {len(lines)} applied revision(s) differ from these "
            "files (run `verify`); nothing was changed. If the edits are intended, upgrade "
            "with --accept-checksums (CLI), -x accept_checksums=true (alembic) or "
            '"accept_checksums": true (event)', lines)
    else:
        progress.warnings.extend(f"checksum: {line}" for line in lines)


def _snapshot(conn: Connection, route: planning.Route, run: Run, progress: Progress,
              stopping: threading.Event) -> None:
    """Before the first revision of an upgrade that applies something: the snapshot (an
    earlier run's, when one taken at this start is still good: see audit.unconsumed)."""
    if not route.steps or not run.snapshot:
        return
    if run.cluster is None:
        raise SnapshotFailed("a snapshot before upgrading is on (SNAPSHOT_BEFORE_UPGRADE, true "
                             "by default in prod; --snapshot) but no cluster is named: set "
                             "DB_CLUSTER_IDENTIFIER, or turn the snapshot off; nothing was "
                             "applied")
    from alquimista_schema.connect import rds

    limit = time.monotonic() + run.snapshot_wait
    remaining = run.remaining()
    until = limit if remaining is None else min(limit, time.monotonic() + remaining)

    def chosen(name: str) -> None:
        progress.snapshot = name

    snapshot.take(rds.client(within=until - time.monotonic()), run.cluster,
                  snapshot.name_for(route.start, route.end, run.request_id),
                  wait_until=until, chosen=chosen,
                  tags=snapshot.tags_for(run.request_id, route.start, route.end),
                  reuse=lambda name: audit.unconsumed(conn, name),
                  sleep=interrupts.pause(stopping, progress, "while waiting for the snapshot, "
                                                             "before any revision ran"))


def _repair(conn: Connection, url: Any, route: planning.Route, run: Run,
            progress: Progress) -> None:
    """Before the first revision: drop the INVALID indexes pending revisions create."""
    if not route.steps:
        return
    opened = applying.side_session(url, run)
    for line in repair.drop_invalid(conn, route.steps, opened, run.timeouts()["lock_timeout"]):
        _warn(progress, line)
        progress.changed = True


def _restore_point(conn: Connection, route: planning.Route, run: Run,
                   progress: Progress) -> None:
    """Just before the first revision: the server's time, the point a point-in-time
    restore goes back to; where the cluster is named, until when it can (its backup
    retention, asked first so nothing stands between the restore point and the first
    revision). A retention that cannot be read is a warning."""
    if not route.steps:
        return
    days = _retention(run, progress) if run.cluster is not None else None
    point = conn.exec_driver_sql("SELECT clock_timestamp()").scalar()
    conn.commit()
    progress.restore_point = point
    if days is not None and point is not None:
        progress.restorable_until = (point + timedelta(days=days)).astimezone(UTC)


def _retention(run: Run, progress: Progress) -> int | None:
    """The named cluster's backup retention in days (None: unknown, and warned)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from alquimista_schema.connect import rds

    assert run.cluster is not None
    try:  # a few seconds at most: an unreachable RDS API must not hold up the upgrade
        client = rds.client(within=max(run.bounded(RETENTION_SECONDS), 1.0))
        return snapshot.retention_days(client, run.cluster)
    except (ClientError, BotoCoreError, SchemaError) as exc:
        _warn(progress, f"until when the restore point can be restored to is not known: "
                        f"cluster {run.cluster!r} could not be described ({snapshot.why(exc)}); "
                        "check DB_CLUSTER_IDENTIFIER and that the role may "
                        "rds:DescribeDBClusters")
        return None


def _prune(run: Run, progress: Progress) -> None:
    """After a successful upgrade that took (or reused) a snapshot: keep the newest
    ``run.snapshot_keep`` of the runner's own; what cannot be deleted is a warning."""
    if progress.snapshot is None or run.cluster is None:
        return
    from alquimista_schema.connect import rds

    remaining = run.remaining()
    until = None if remaining is None else time.monotonic() + remaining
    try:
        client = rds.client(within=remaining)
    except SchemaError as exc:
        _warn(progress, f"old snapshots were not pruned: {exc}")
        return
    for problem in snapshot.prune(client, run.cluster, run.snapshot_keep, progress.snapshot,
                                  until=until):
        _warn(progress, problem)


def _warn(progress: Progress, problem: str) -> None:
    """A problem that does not change the outcome: in the result's warnings and the log."""
    progress.warnings.append(problem)
    log.warning("%s", problem)


def adopt(url: Any, run: Run, *, dry_run: bool = False) -> adoption.Adoption:
    """Stamp the newest revision the live schema matches exactly; else raise DriftDetected.

    Verification and stamp happen under the migration lock, so nothing can change the
    schema in between. A refusal changes nothing, not even the audit table.
    """
    executor = executors.of()
    script = executor.script
    with locked(url, run, None) as progress, connect(url, **run.connect_options()) as conn:
        with progress.untraced():
            found = adoption.verify(conn, script)
        if found.status != "matches":
            return found
        if dry_run:
            return adoption.Adoption("would_adopt", found.revision,
                                     f"the schema matches revision {found.revision} exactly; "
                                     "would stamp it")
        stamp = Change("stamp", targets.parse(found.revision or "base"))
        book = ledger.Ledger(conn, script, run.request_id, progress.warnings.append).open()
        _stamp(conn, script, stamp, progress, executor, book, how="adopted")
        return adoption.Adoption("adopted", found.revision,
                                 f"the schema matches revision {found.revision} exactly; "
                                 "stamped it")
