"""The run machinery: connect, refuse a standby, lock, audit, and step through revisions.

The verbs (migrate.py) and the plain ``alembic`` command (environment.py) run every
change through :func:`locked`: one connection holds the migration lock and writes the
audit row whatever happens, while the work runs on a second connection, one
revision per transaction, watching the deadline. Steps are computed (and relative
targets checked against the history) before the lock is taken.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema import durations
from alquimista_schema.durations import session_timeouts
from alquimista_schema.errors import (
    MigrationFailed,
    SchemaError,
)
from alquimista_schema.runtime import audit, guards
from alquimista_schema.runtime.locking import migration_lock
from alquimista_schema.runtime.pacing import Pacer, failure
from alquimista_schema.runtime.planning import current_heads, landing, one, plan
from alquimista_schema.runtime.run import Applied, Progress, Run
from alquimista_schema.script import directory
from alquimista_schema.targets import Target

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)


# --- the lock and the audit around a run ---------------------------------------------


@contextmanager
def locked(url: Any, run: Run, target: str | None) -> Iterator[Progress]:
    """Connect, refuse a standby, take the lock; audit whatever happens inside.

    The body fills the yielded Progress. A failed audit write never changes the run's
    outcome: the lock connection is rolled back and the problem lands in
    ``Progress.warnings`` (so in the Result, or in the error's ``progress``) and the log.
    """
    started = time.monotonic()
    with run.connection(url) as opened:
        guards.guard_replica(opened)
        # The lock, the holder's description and the audit run on the driver connection
        # (locking.py, audit.py), as on the express path.
        lock_conn = opened.connection.driver_connection
        with migration_lock(lock_conn, wait_seconds=run.bounded(run.lock_wait)), \
                audit.audited(lock_conn, run, target, started) as progress:
            yield progress


# --- stepping through revisions -------------------------------------------------------


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
    pacer: Pacer = field(init=False)

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.run)

    def __call__(self, todo: list[Any]) -> Iterator[Any]:
        for step in todo:
            self._committed()
            cap = self.pacer.before(step.revision.revision, self.progress)
            if cap is not None:
                # Not committed here: Alembic's transaction for the revision takes it up,
                # so the SET costs no round trip of its own.
                self.conn.exec_driver_sql(cap)
            self.current, self.began = step, time.perf_counter()
            yield step
        self._committed()

    def _committed(self) -> None:
        step, self.current = self.current, None
        if step is None:
            return
        item = Applied(step.revision.revision, directory.describe(step.revision),
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
    config = directory.make_config(connection=conn, stdout=io.StringIO(), session_configured=True)
    try:
        with EnvironmentContext(config, script, fn=lambda rev, context: stepping(todo),
                                as_sql=False, destination_rev=landing(todo[-1]) or "base"):
            script.run_env()
    except SchemaError:
        raise
    except Exception as exc:
        failing = (stepping.current or todo[0]).revision.revision
        if isinstance(exc, DBAPIError):
            raise failure(exc, failing, deadline_bound=stepping.pacer.bound) from exc
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
    from alquimista_schema.schema import introspect
    from alquimista_schema.script import lint

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
    from alquimista_schema import targets
    from alquimista_schema.schema import introspect

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
        progress.applied.append(Applied(rev.revision, directory.describe(rev),
                                        round((now - last[0]) * 1000, 1)))
        last[0] = now

    return record
