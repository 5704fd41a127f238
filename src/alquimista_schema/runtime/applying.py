"""Applying a route: one Alembic run, one transaction per revision, and a revision that
could not get its table lock tried again at that revision (runtime/lockwaits.py).

The run skeleton (skeleton.py) calls :func:`apply` under the migration lock, once the
guards, the ledger check and the snapshot are done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.connect.database import open_driver
from alquimista_schema.errors import LockTimeout, MigrationFailed, SchemaError
from alquimista_schema.runtime import (
    executors,
    interrupts,
    ledger,
    lockwaits,
    planning,
    stepping,
    transactions,
)
from alquimista_schema.runtime.pacing import Pacer, failure
from alquimista_schema.runtime.run import Applied, Progress, Run
from alquimista_schema.script import directory

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep
    from alembic.script import ScriptDirectory

# What a revision may SET that would otherwise leak into the later revisions of the run.
SESSION = ("search_path", "lock_timeout", "statement_timeout",
           "client_connection_check_interval")
CHECK_INTERVAL = "1s"  # PostgreSQL 14+ (Aurora PostgreSQL 15 has it)


@dataclass
class Work:
    """What one application of a route needs besides the route."""

    conn: Connection
    script: ScriptDirectory
    run: Run
    progress: Progress
    book: ledger.Ledger
    executor: executors.Executor
    url: Any
    stopping: threading.Event
    replan: Callable[[str | None], planning.Route]
    """The route from where the database is now to where the first one ended."""
    repair: Callable[[planning.Route], None]
    """Before a retry: drop what a cancelled concurrent index build left (runtime/repair)."""


def side_session(url: Any, run: Run) -> Callable[[], Any]:
    """How to open one more session beside the run's, in autocommit and named as the run
    (the blocker watcher's, the repair's): one attempt within the run's connect timeout."""
    return partial(open_driver, url, connect_timeout=run.connect_timeout,
                   application_name=run.application_name)


def apply(work: Work, route: planning.Route) -> None:
    """Apply ``route`` in one Alembic run: env.py once, one transaction per revision.

    A failing revision is rolled back and the ones before it stay committed. One that
    failed on a lock is tried again from there (``Run.lock_retries`` times at most, never
    past the time left); the last lock failure ends the run as LOCK_TIMEOUT.
    """
    if not route.steps:
        return
    driver: Any = work.conn.connection.driver_connection
    pid = driver.info.backend_pid
    run = work.run
    with transactions.watching(work.conn) as witness, \
            lockwaits.watching(side_session(work.url, run), pid) as watch:
        attempt, failing = 1, None
        while True:
            try:
                _run_steps(work, route, witness, watch)
                return
            except MigrationFailed as exc:
                if exc.sqlstate not in lockwaits.RETRYABLE or exc.committed:
                    raise
                if exc.revision != failing:  # each revision has its own LOCK_RETRIES
                    attempt, failing = 1, exc.revision
                _again(work, exc, attempt, watch)
            route = work.replan(work.progress.to_revision)
            work.repair(route)
            attempt += 1


def _again(work: Work, exc: MigrationFailed, attempt: int, watch: lockwaits.Watch) -> None:
    """After attempt ``attempt`` failed on a lock: record it, then wait for the next one;
    or raise LOCK_TIMEOUT when no attempt is left or the time left cannot hold one."""
    run, progress = work.run, work.progress
    blockers = [b.describe() for b in watch.seen]
    progress.attempts.append({"revision": exc.revision, "attempt": attempt,
                              "sqlstate": exc.sqlstate, "error": str(exc),
                              "blockers": [b.as_dict() for b in watch.seen]})
    wait = lockwaits.backoff(attempt)
    if attempt > run.lock_retries or not lockwaits.fits(run, wait):
        why = (f"after {attempt} attempt(s)" if attempt > run.lock_retries else
               f"after {attempt} attempt(s), with too little time left for another")
        raise LockTimeout(f"{exc} ({why}; the database is at "
                          f"{progress.to_revision or 'base'}, every revision before it "
                          "committed)", blockers=blockers, revision=exc.revision) from exc
    cause = lockwaits.RETRYABLE.get(exc.sqlstate or "", "lock")
    message = (f"revision {exc.revision}: {cause} ({exc.sqlstate}) on attempt {attempt} of "
               f"{run.lock_retries + 1}" + (f", blocked by {'; '.join(blockers)}"
                                            if blockers else "") +
               f"; trying it again in {wait:.1f}s")
    progress.warnings.append(message)
    if progress.on_recorded is not None:  # the audit row counts the attempt now
        progress.on_recorded()
    interrupts.pause(work.stopping, progress,
                     f"while waiting to retry revision {exc.revision}")(wait)


def _run_steps(work: Work, route: planning.Route, witness: transactions.Witness,
               watch: lockwaits.Watch) -> None:
    conn, run, progress = work.conn, work.run, work.progress
    steps = _Steps(conn, run, progress, route.steps, witness, watch)
    record = [work.book.recorder()]
    try:
        work.executor.run_steps(conn, steps, route.end, record)
    except SchemaError:
        raise
    except Exception as exc:
        raise _failed(exc, (steps.current or route.steps[0]).revision.revision, steps,
                      witness, watch) from exc


def _failed(exc: Exception, failing: str, steps: _Steps, witness: transactions.Witness,
            watch: lockwaits.Watch) -> SchemaError:
    """What a failed revision's error says: rolled back (or not all of it), and why."""
    caveat = witness.caveat()
    if steps.progress.stop_signal is not None:  # the watcher cancelled its statement
        return interrupts.stopped(steps.progress, f"during revision {failing}, which was "
                                                  f"rolled back{caveat}")
    if isinstance(exc, DBAPIError):
        return failure(exc, failing, deadline_bound=steps.pacer.bound, caveat=caveat,
                       committed=witness.kept,
                       blockers=tuple(b.describe() for b in watch.seen))
    # a revision's own code may raise anything
    return MigrationFailed(f"revision {failing} failed and was rolled back{caveat}: "
                           f"{type(exc).__name__}: {exc}", revision=failing,
                           committed=witness.kept)


@dataclass
class _Steps:
    """One Alembic run's steps, handed out one at a time.

    Alembic asks for the next step only after the previous one's transaction has
    closed, so this is where the work between revisions happens: record the one that
    committed, check the deadline, shrink ``statement_timeout`` to the time left. A
    revision the deadline stops is never started.
    """

    conn: Connection
    run: Run
    progress: Progress
    todo: list[RevisionStep]
    witness: transactions.Witness
    watch: lockwaits.Watch
    current: RevisionStep | None = None
    began: float = 0.0
    pacer: Pacer = field(init=False)
    session: dict[str, str] | None = None
    """The settings every revision starts from (``SESSION``), read before the first."""

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.run)

    def __call__(self, heads: Any, context: Any) -> Iterator[RevisionStep]:
        for step in self.todo:
            self._committed()
            if self.progress.stop_signal is not None:
                raise interrupts.stopped(self.progress,
                                         f"before revision {step.revision.revision}")
            self.pacer.before(step.revision.revision, self.progress)
            self.current = step  # a failure from here on is this revision's
            self._reassert()
            self.began = time.perf_counter()
            self.witness.begin(step.revision.revision, self.progress.to_revision)
            self.watch.begin(step.revision.revision)
            yield step
        self._committed()

    def _reassert(self) -> None:
        """Start each revision from the run's session: a ``SET search_path`` or
        ``SET statement_timeout = 0`` in one revision never reaches the next one, nor
        switches off the deadline's cap. One round trip, not committed here: Alembic's
        transaction for the revision takes it up (a rollback undoes it with the revision).
        """
        if self.session is None:  # as the run set it up, before any revision ran
            row = self.conn.exec_driver_sql(
                "SELECT " + ", ".join(f"current_setting('{n}')" for n in SESSION)).one()
            self.session = dict(zip(SESSION, row, strict=True))
        values = dict(self.session)
        if self.pacer.bound and self.pacer.cap is not None:
            values["statement_timeout"] = self.pacer.cap
        self.conn.exec_driver_sql(
            "SELECT " + ", ".join(f"set_config('{n}', %({n})s, false)" for n in values),
            values)

    def _committed(self) -> None:
        self.watch.end()
        self.witness.end()
        step, self.current = self.current, None
        if step is not None:
            took = round((time.perf_counter() - self.began) * 1000, 1)
            self.progress.record(Applied(step.revision.revision,
                                         directory.describe(step.revision), took),
                                 stepping.landing(step))
