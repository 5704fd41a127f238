"""Between two revisions: the deadline check, the statement_timeout cap, and what a
revision's database error means (for the run skeleton); light (no SQLAlchemy, no Alembic).
"""

from __future__ import annotations

from dataclasses import dataclass

from alquimista_schema import durations
from alquimista_schema.connect.sessions import driver_error, first_line
from alquimista_schema.errors import DeadlineExceeded, MigrationFailed, SchemaError
from alquimista_schema.runtime.run import Progress, Run

# How far past the deadline (into the margin) a statement may run between two shrinks.
SLACK = 1.0


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


def check_deadline(run: Run, revision: str, progress: Progress) -> None:
    remaining = run.remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded(
            f"stopped before revision {revision}: too little time left before the "
            f"deadline; the database is at {progress.to_revision or 'base'}. Run again (or "
            "raise the function's timeout)")


@dataclass
class Pacer:
    """What to do before each revision of one run."""

    run: Run
    bound: bool = False
    """Whether the deadline set the current revision's statement_timeout."""
    set_at: float | None = None
    """The time left when statement_timeout was last shrunk to it."""
    cap: str | None = None
    """The statement_timeout the deadline last set (while ``bound``)."""

    def before(self, revision: str, progress: Progress) -> str | None:
        """Check the deadline (a revision it stops is never started); return the SET that
        caps statement_timeout at the time left, to send inside the revision's transaction
        (a rollback undoes it too), or None when the last cap still holds.

        Re-set only once the last cap would let a statement run more than SLACK seconds
        past the deadline (the margin covers that), not before every revision: a
        thousand small revisions would otherwise pay a thousand extra round trips.
        """
        check_deadline(self.run, revision, progress)
        timeout, self.bound = statement_timeout(self.run)
        remaining = self.run.remaining()
        if not self.bound or remaining is None:
            return None
        if self.set_at is None or self.set_at - remaining > SLACK:
            self.set_at, self.cap = remaining, timeout
            return f"SET statement_timeout = '{timeout}'"
        return None


def failure(exc: BaseException, revision: str, *, deadline_bound: bool, caveat: str = "",
            committed: list[str] | None = None, blockers: tuple[str, ...] = ()) -> SchemaError:
    """Translate a revision's database error (psycopg2's, or SQLAlchemy's wrapping it).

    ``caveat``/``committed``: what of the revision had already committed, and so stayed
    (runtime/transactions.py); ``blockers``: who held the lock it waited for."""
    code = getattr(driver_error(exc), "pgcode", None)
    if code == "57014" and deadline_bound:
        return DeadlineExceeded(
            f"revision {revision} was cancelled and rolled back because the time left before "
            f"the deadline ran out{caveat}; raise the function's timeout and run again")
    held = ("blocked by " + "; ".join(blockers)) if blockers else \
        "another session holds a conflicting lock"
    if code == "55P03":
        reason = (f"could not get a lock within lock_timeout: {held}; retry when traffic is "
                  "lower, or raise lock_timeout")
    elif code == "40P01":
        reason = f"deadlock with another session: {held}"
    elif code == "57014":
        reason = "cancelled by statement_timeout; raise it, or split the revision"
    else:
        reason = first_line(exc)
    return MigrationFailed(f"revision {revision} failed and was rolled back{caveat}: {reason}",
                           revision=revision, committed=committed, sqlstate=code)
