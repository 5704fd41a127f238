"""The express upgrade: compiled revisions applied through psycopg2, without Alembic.

Everything the Alembic path guarantees holds here too, by the same code where it can
be shared: the migration lock and the audit row on a connection of their own
(locking.py, audit.py), one transaction per revision with Alembic's own version-table
statement in it, the deadline checked and ``statement_timeout`` capped before each
revision (pacing.py), a failing revision rolled back with the ones before it kept,
and the same Result and errors.

Whatever the express path is not sure of, it leaves to the full path before
changing anything, by answering None: no compiled history (or a stale one), a target
that is relative or not in it, a revision that must run through Alembic, the lock
already taken, a standby, an unversioned database that holds anything, an unwaived
lint finding under ``enforce``, a connection that fails. The full path then waits,
refuses or reports exactly as it always does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2

from alquimista_schema import audit, compiled, durations, lint, locking, sessions
from alquimista_schema.compiled import Chain, Revision
from alquimista_schema.errors import LintRefused, MigrationFailed
from alquimista_schema.pacing import Pacer, failure
from alquimista_schema.runs import Applied, Progress, Result, Run
from alquimista_schema.targets import Target

# Anything of a user's in the current schema besides the runner's audit table (and what
# extensions own): an unversioned database holding it may need `adopt` (the full path
# decides, with introspect.refuse_unadopted).
_OCCUPIED = """
SELECT EXISTS (SELECT 1 FROM pg_class c
                WHERE c.relnamespace = current_schema()::regnamespace
                  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
                  AND c.relname <> %(audit)s
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                     AND d.objid = c.oid AND d.deptype = 'e'))
    OR EXISTS (SELECT 1 FROM pg_proc p
                WHERE p.pronamespace = current_schema()::regnamespace
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                     AND d.objid = p.oid AND d.deptype = 'e'))
"""

# PostgreSQL 13 and later time each statement of a multi-statement message on its own,
# and a SET in it applies to the statements after it; older servers take the full path.
_STATE = """
SELECT set_config('lock_timeout', %(lock_timeout)s, false),
       set_config('statement_timeout', %(statement_timeout)s, false),
       to_regclass('alembic_version') IS NOT NULL,
       current_setting('server_version_num')::int >= 130000
"""


class _Fallback(Exception):
    """Not sure: leave the run to the full path (nothing has been changed)."""


def upgrade(url: Any, run: Run, target: Target, *, adopt: Any = None,
            on_applied: Callable[[Applied], None] | None = None) -> Result | None:
    """Upgrade through the compiled revisions; None: nothing was done, take the full path.

    ``url`` is a Dsn or a SQLAlchemy URL (read by its fields); ``adopt`` an open
    connection to it (the fast path's), handed back untouched when the answer is None.
    """
    chain = compiled.load()
    if chain is None or target.relative or target.name is None:
        return None
    dest = chain.head if target.name in ("head", "heads") else target.name
    try:
        with _connection(url, run, adopt) as work, _connection(url, run, None) as lock:
            return _under_lock(work, lock, chain, dest, run, target, on_applied)
    except _Fallback:
        return None


@contextmanager
def _connection(url: Any, run: Run, adopt: Any) -> Iterator[Any]:
    if adopt is not None:
        # The fast path's, now ours: closed when done, as the full path closes it, but
        # handed back to the full path on a fall-back while it is sound (idle).
        try:
            yield adopt
        except _Fallback:
            if adopt.closed or adopt.get_transaction_status() != 0:
                sessions.close(adopt)
            raise
        except BaseException:
            sessions.close(adopt)
            raise
        sessions.close(adopt)
        return
    try:
        conn = sessions.connect(url, connect_timeout=run.bounded(run.connect_timeout),
                                application_name=run.application_name)
    except Exception:  # whatever it is, the full path retries and says what is wrong
        raise _Fallback from None
    try:
        yield conn
    finally:
        sessions.close(conn)


def _under_lock(work: Any, lock: Any, chain: Chain, dest: str, run: Run, target: Target,
                on_applied: Callable[[Applied], None] | None) -> Result:
    started = time.monotonic()
    try:
        [(got, standby)] = sessions.fetch(
            lock, "SELECT pg_try_advisory_lock(%(key)s), pg_is_in_recovery()",
            {"key": locking.LOCK_KEY})
    except psycopg2.Error:
        raise _Fallback from None
    try:
        if not got or standby:
            raise _Fallback  # the full path waits for the lock, or refuses the standby
        with audit.audited(lock, run, target.text, started) as progress:
            pending, create_table = _plan(work, chain, dest, run, progress)
            _apply(work, chain, pending, create_table, run, progress, on_applied)
        return progress.result()
    finally:
        if got:
            locking.unlock(lock)


def _plan(work: Any, chain: Chain, dest: str, run: Run,
          progress: Progress) -> tuple[list[Revision], bool]:
    """Read where the database is (setting the session's timeouts); raise _Fallback
    unless every revision from there to ``dest`` is compiled and clean."""
    progress.audit_errors = False  # falling back leaves no trace: the full path audits
    settings = durations.default_timeouts(run.lock_timeout, run.statement_timeout)
    try:
        [(_, _, has_table, recent)] = sessions.fetch(work, _STATE, settings)
        versions = [v for (v,) in sessions.fetch(
            work, "SELECT version_num FROM alembic_version")] if has_table else []
        occupied = not versions and sessions.fetch(
            work, _OCCUPIED, {"audit": audit.TABLE}) == [(True,)]
    except psycopg2.Error:
        raise _Fallback from None
    if len(versions) > 1 or occupied or not recent:
        raise _Fallback
    start = versions[0] if versions else None
    pending = chain.pending(start, dest)
    if pending is None or any(r.statements is None for r in pending):
        raise _Fallback
    if run.lint_policy == "enforce":
        manifest = lint.load_manifest()
        try:
            for rev in pending:
                lint.check_revision(rev.revision, run.lint_policy, manifest)
        except LintRefused:
            raise _Fallback from None  # the full path refuses it, on the record
    progress.at(start)
    progress.audit_errors = True
    return pending, not has_table


def _apply(work: Any, chain: Chain, pending: list[Revision], create_table: bool, run: Run,
           progress: Progress, on_applied: Callable[[Applied], None] | None) -> None:
    """One transaction per revision: its statements and its version row, then COMMIT."""
    pacer = Pacer(run)
    with work.cursor() as cur:
        for rev in pending:
            cap = pacer.before(rev.revision, progress)
            parts = ["BEGIN", *([cap] if cap else []),
                     *([chain.version_table_sql] if create_table else []),
                     *(rev.statements or ()), rev.version_sql]
            create_table = False
            began = time.perf_counter()
            try:
                # One round trip, the version row's count last. Each statement ends on a
                # line of its own: a statement's trailing -- comment swallows its ';'.
                cur.execute("\n;\n".join(parts))
                matched = cur.rowcount
                if matched != 1:
                    raise MigrationFailed(
                        f"revision {rev.revision} was rolled back: alembic_version did not "
                        f"hold {rev.down_revision or 'an empty table'} ({matched} rows "
                        "matched); another process changed it", revision=rev.revision)
                cur.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(psycopg2.Error):
                    cur.execute("ROLLBACK")
                if isinstance(exc, psycopg2.Error):
                    raise failure(exc, rev.revision, deadline_bound=pacer.bound) from exc
                raise
            item = Applied(rev.revision, rev.description,
                           round((time.perf_counter() - began) * 1000, 1))
            progress.applied.append(item)
            progress.to_revision = rev.revision
            if on_applied is not None:
                on_applied(item)
