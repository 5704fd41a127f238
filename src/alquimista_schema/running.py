"""The run machinery: connect, refuse a standby, lock, audit, and step through revisions.

The verbs (migrate.py) and the plain ``alembic`` command (environment.py) run every
change through :func:`locked`: one connection holds the migration lock and writes the
audit row whatever happens, while the work runs on a second connection, one
revision per transaction, watching the deadline. Steps are computed (and relative
targets checked against the history) before the lock is taken.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema import audit, durations, guards, scripts
from alquimista_schema.durations import session_timeouts
from alquimista_schema.errors import (
    DeadlineExceeded,
    MigrationFailed,
    SchemaError,
)
from alquimista_schema.locking import migration_lock
from alquimista_schema.planning import current_heads, landing, one, plan
from alquimista_schema.runs import Applied, Progress, Run
from alquimista_schema.targets import Target

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


# --- the lock and the audit around a run ---------------------------------------------


@contextmanager
def locked(url: Any, run: Run, target: str | None) -> Iterator[Progress]:
    """Connect, refuse a standby, take the lock; audit whatever happens inside.

    The body fills the yielded Progress. A failed audit write never changes the run's
    outcome: the lock connection is rolled back and the problem lands in
    ``Progress.warnings`` (so in the Result, or in the error's ``progress``) and the log.
    """
    started = time.monotonic()
    progress = Progress()
    with run.connection(url) as lock_conn:
        guards.guard_replica(lock_conn)
        with migration_lock(lock_conn, wait_seconds=run.bounded(run.lock_wait)):
            outcome: BaseException | None = None
            try:
                yield progress
            except BaseException as exc:
                outcome = exc
                raise
            finally:
                _audit(lock_conn, _entry(run, target, progress, outcome, started), progress)
                if isinstance(outcome, SchemaError):
                    outcome.progress = progress.result()


def _entry(run: Run, target: str | None, progress: Progress, outcome: BaseException | None,
           started: float) -> audit.Entry | None:
    """Return the audit row for this run, or None when it must leave no trace."""
    entry = audit.Entry(run.request_id, run.actor, run.action, target, progress.from_revision,
                        progress.to_revision, "success", secret_version=run.secret_version,
                        applied=[asdict(a) for a in progress.applied],
                        duration_ms=round((time.monotonic() - started) * 1000, 1))
    if isinstance(outcome, SchemaError):
        entry.outcome, entry.error_code, entry.error = "error", outcome.code, str(outcome)
    elif outcome is not None:  # never audit an unexpected failure as a success
        entry.outcome, entry.error_code = "error", "INTERNAL_ERROR"
        entry.error = f"{type(outcome).__name__}: {outcome}"[:500]
    failed = entry.outcome == "error" and progress.audit_errors
    return entry if failed or entry.applied or progress.changed else None


def _audit(conn: Connection, entry: audit.Entry | None, progress: Progress) -> None:
    if entry is None:
        return
    try:
        audit.record(conn, entry)
    except DBAPIError as exc:
        # Permission denied, or the lock connection died. Roll back so the connection
        # stays usable (the unlock), and say so instead of masking the run's outcome.
        with contextlib.suppress(DBAPIError):
            conn.rollback()
        problem = f"the audit row was not written: {_first_line(exc)}"
        progress.warnings.append(problem)
        log.warning("%s (request %s)", problem, entry.request_id)


# --- stepping through revisions -------------------------------------------------------


def statement_timeout(run: Run) -> tuple[str | None, bool]:
    """Return the statement_timeout to use and whether the deadline set it."""
    configured = run.statement_timeout
    remaining = run.remaining()
    if remaining is None:
        return configured, False
    limit = durations.seconds(configured or durations.DEFAULT_STATEMENT_TIMEOUT)
    if limit == 0 or remaining < limit:  # 0 is "no limit" to PostgreSQL
        return durations.milliseconds(remaining), True
    return configured, False


def failure(exc: DBAPIError, revision: str, *, deadline_bound: bool) -> SchemaError:
    """Translate a revision's database error into the package's error."""
    code = getattr(exc.orig, "pgcode", None)
    if code == "57014" and deadline_bound:
        return DeadlineExceeded(
            f"revision {revision} was cancelled and rolled back because the time left before "
            "the deadline ran out; raise the function's timeout and run again")
    if code == "55P03":
        reason = ("could not get a lock within lock_timeout: another session holds a "
                  "conflicting lock; retry when traffic is lower, or raise lock_timeout")
    elif code == "57014":
        reason = "cancelled by statement_timeout; raise it, or split the revision"
    else:
        reason = _first_line(exc)
    return MigrationFailed(f"revision {revision} failed and was rolled back: {reason}",
                           revision=revision)


def _check_deadline(run: Run, revision: str, progress: Progress) -> None:
    remaining = run.remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded(
            f"stopped before revision {revision}: too little time left before the "
            f"deadline; the database is at {progress.to_revision or 'base'}. Run again (or "
            "raise the function's timeout)")


# How far past the deadline (into the margin) a statement may run between two shrinks.
SLACK = 1.0


@dataclass
class _Stepping:
    """One Alembic run's steps, handed out one at a time.

    Alembic asks for the next step only after the previous one's transaction has
    closed, so the generator is where the work between revisions happens: record the
    one that committed, check the deadline, shrink ``statement_timeout`` to the time
    left. A revision the deadline stops is never started.
    """

    conn: Connection
    run: Run
    progress: Progress
    on_applied: Callable[[Applied], None] | None
    current: Any = None
    began: float = 0.0
    bound: bool = False
    """Whether the deadline set this revision's statement_timeout."""
    set_at: float | None = None
    """The time left when statement_timeout was last shrunk to it."""

    def __call__(self, todo: list[Any]) -> Iterator[Any]:
        for step in todo:
            self._committed()
            _check_deadline(self.run, step.revision.revision, self.progress)
            self._shrink_statement_timeout()
            self.current, self.began = step, time.perf_counter()
            yield step
        self._committed()

    def _shrink_statement_timeout(self) -> None:
        """Cap statement_timeout at the time left, inside the revision's own transaction.

        Re-set only once the last cap would let a statement run more than SLACK
        seconds past the deadline (the margin covers that), not before every revision:
        a thousand small revisions would otherwise pay a thousand extra round trips.
        """
        timeout, self.bound = statement_timeout(self.run)
        remaining = self.run.remaining()
        if not self.bound or remaining is None:
            return
        if self.set_at is None or self.set_at - remaining > SLACK:
            # Not committed here: Alembic's transaction for the revision takes it up, so
            # the SET costs no round trip of its own, and a rollback undoes it too.
            self.conn.exec_driver_sql(f"SET statement_timeout = '{timeout}'")
            self.set_at = remaining

    def _committed(self) -> None:
        step, self.current = self.current, None
        if step is None:
            return
        item = Applied(step.revision.revision, scripts.describe(step.revision),
                       round((time.perf_counter() - self.began) * 1000, 1))
        self.progress.applied.append(item)
        self.progress.to_revision = landing(step)
        if self.on_applied is not None:
            self.on_applied(item)


def apply(conn: Connection, script: ScriptDirectory, todo: list[Any], run: Run,
          progress: Progress, on_applied: Callable[[Applied], None] | None) -> None:
    """Apply ``todo`` in one Alembic run: env.py once, one transaction per revision.

    A failing revision is rolled back and the ones before it stay committed.
    """
    if not todo:
        return
    from alembic.runtime.environment import EnvironmentContext

    stepping = _Stepping(conn, run, progress, on_applied)
    config = scripts.make_config(connection=conn, stdout=io.StringIO(), session_configured=True)
    try:
        with EnvironmentContext(config, script, fn=lambda rev, context: stepping(todo),
                                as_sql=False, destination_rev=landing(todo[-1]) or "base"):
            script.run_env()
    except SchemaError:
        raise
    except Exception as exc:
        failing = (stepping.current or todo[0]).revision.revision
        if isinstance(exc, DBAPIError):
            raise failure(exc, failing, deadline_bound=stepping.bound) from exc
        # a revision's own code may raise anything
        raise MigrationFailed(f"revision {failing} failed and was rolled back: "
                              f"{type(exc).__name__}: {exc}", revision=failing) from exc


@dataclass
class Move:
    """One upgrade or downgrade request, as the verbs hand it over."""

    target: Target
    upgrade: bool
    confirm: str | None = None
    on_applied: Callable[[Applied], None] | None = None


def move(url: Any, request: Move, run: Run, *, script: ScriptDirectory,
         adopt: Any = None) -> Progress:
    """Plan (before the lock), then lock, re-plan if the database moved, and apply."""
    from alquimista_schema import introspect, lint

    upgrade = request.upgrade
    manifest = lint.load_manifest() if upgrade and run.lint_policy == "enforce" else {}
    settings = durations.default_timeouts(run.lock_timeout, run.statement_timeout)
    with (run.connection(url) if adopt is None else run.connection(url, adopt=adopt)) as conn:
        planned = plan(script, request.target, one(current_heads(script, conn)),
                       upgrade=upgrade)
        with locked(url, run, request.target.text) as progress, \
                session_timeouts(conn, settings, restore=False):
            progress.at(one(current_heads(script, conn)))
            progress.audit_errors = False  # a refusal here leaves no trace at all
            if upgrade and progress.from_revision is None:
                introspect.refuse_unadopted(conn)
            if progress.from_revision != planned.start:
                planned = plan(script, request.target, progress.from_revision, upgrade=upgrade)
            if not upgrade:
                guards.authorise_downgrade(conn, planned.dropped, request.target.text,
                                          request.confirm)
            progress.audit_errors = True
            for rev in planned.scripts if upgrade else ():  # refuse before applying anything
                lint.check_revision(rev.revision, run.lint_policy, manifest)
            apply(conn, script, planned.steps, run, progress, request.on_applied)
    return progress


@contextmanager
def alembic_command(url: str, conn: Connection, script: ScriptDirectory, *, action: str,
                    target: str, confirm: str | None = None, purge: bool = False,
                    environment: str = "dev") -> Iterator[Progress]:
    """Run a plain ``alembic upgrade/downgrade/stamp`` as the verbs run: same lock, same
    standby guard, same downgrade guard, same audit (``conn`` is Alembic's connection)."""
    from alquimista_schema import introspect, targets

    run = Run(action=action, environment=environment)
    parsed = targets.parse(target, {"upgrade": "up", "downgrade": "down"}.get(action))  # type: ignore[arg-type]
    if action == "downgrade" or (action == "stamp" and purge):
        what = "stamp --purge" if action == "stamp" else action
        guards.refuse_in_prod(environment, what, target, confirm)
    with locked(url, run, target) as progress:
        progress.at(one(current_heads(script, conn)))
        progress.audit_errors = False  # a refusal here leaves no trace at all
        if action == "upgrade" and progress.from_revision is None:
            introspect.refuse_unadopted(conn)
            conn.commit()  # Alembic gives each revision its own transaction
        todo = plan(script, parsed, progress.from_revision,
                    upgrade=action == "upgrade") if action != "stamp" else None
        if todo is not None and action == "downgrade":
            guards.authorise_downgrade(conn, todo.dropped, target, confirm)
        progress.audit_errors = True
        try:
            yield progress
        except SchemaError:
            raise
        except Exception as exc:  # say which revision, in one line, as the verbs do
            if todo is None or len(progress.applied) >= len(todo.steps):
                raise
            failing = todo.steps[len(progress.applied)].revision.revision
            if isinstance(exc, DBAPIError):
                raise failure(exc, failing, deadline_bound=False) from exc
            raise MigrationFailed(f"revision {failing} failed and was rolled back: "
                                  f"{type(exc).__name__}: {exc}", revision=failing) from exc
        progress.to_revision = one(current_heads(script, conn))
        progress.changed = progress.to_revision != progress.from_revision


def recorder(progress: Progress) -> Callable[..., None]:
    """Return an ``on_version_apply`` callback timing each revision applied (or undone)."""
    last = [time.perf_counter()]

    def record(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        if not step.is_migration:
            return
        now = time.perf_counter()
        rev = step.up_revision
        progress.applied.append(Applied(rev.revision, scripts.describe(rev),
                                        round((now - last[0]) * 1000, 1)))
        last[0] = now

    return record
