"""The verbs: what every door calls (the CLI, the Lambda, and through env.py plain alembic).

One public function per verb, shaped like Alembic's own (``alembic/command.py``):
the target first parsed by the one grammar (``targets``), then one call into the
layer that does the work. Importing this module loads neither SQLAlchemy nor Alembic:
"already at head" is answered without them (``runtime/probe.py``); the run skeleton
(``runtime/skeleton.py``) is imported only when there is something to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alquimista_schema import targets
from alquimista_schema.connect import dsn
from alquimista_schema.connect.dsn import UrlLike
from alquimista_schema.errors import ChecksumMismatch
from alquimista_schema.runtime import probe
from alquimista_schema.runtime.run import Applied, Change, Result, Run

if TYPE_CHECKING:
    from collections.abc import Callable

    from alquimista_schema.autogenerate.adoption import Adoption
    from alquimista_schema.runtime.effects import Effect
    from alquimista_schema.runtime.ledger import Verification
    from alquimista_schema.script.directory import RevisionInfo
    from alquimista_schema.script.lint import Finding


__all__ = ["Applied", "Plan", "Result", "Run", "Written", "adopt", "applied", "check", "current",
           "downgrade", "heads", "history", "migration_running", "plan", "revision", "sql",
           "stamp", "upgrade", "verify"]


@dataclass(frozen=True)
class Plan:
    """What an upgrade would run, and its SQL (Alembic's offline rendering, for review)."""

    from_revision: str | None
    to_revision: str | None
    pending: list[RevisionInfo]
    sql: str
    findings: list[Finding]
    """squawk's findings for the pending revisions (waived ones say why)."""
    effects: list[Effect] = field(default_factory=list)
    """What each pending statement does to its table as the table is now
    (runtime/effects.py): its lock, rewrite, scan or catalog only, the table's size."""


def _probe(url: UrlLike, run: Run) -> probe.Answer:
    """Ask "already at head?" once, inside the run's budget."""
    remaining = run.remaining()
    wait = float(run.connect_timeout) if remaining is None else \
        max(min(float(run.connect_timeout), remaining), 1.0)
    return probe.probe(url, connect_timeout=wait, statement_timeout=wait,
                       application_name=run.application_name)


def upgrade(url: str | UrlLike, revision: str | targets.Target = "head", *, run: Run | None = None,
            on_applied: Callable[[Applied], None] | None = None,
            accept_checksums: bool = False) -> Result:
    """Upgrade to a later version, one transaction per revision, under the lock.

    "Already at head" is answered by one query, without loading the revisions; else
    the run skeleton takes over, on the connection that asked. ``accept_checksums``
    records the new checksums of applied revisions edited since (see ``verify``).
    """
    run = run or Run(action="upgrade")
    target = targets.parsed(revision, "up")
    # Read as fields (a Dsn): parsing into a SQLAlchemy URL would load SQLAlchemy (~200 ms).
    light = dsn.parse(url) if isinstance(url, str) else url
    answer = probe.Answer(None)
    if target.name in ("head", "heads") and not target.relative and not accept_checksums:
        answer = _probe(light, run)
        if answer.head is not None:
            return Result(answer.head, answer.head, [])
    from alquimista_schema.runtime import skeleton  # loads SQLAlchemy and Alembic

    request = Change("upgrade", target, on_applied=on_applied,
                     accept_checksums=accept_checksums)
    return skeleton.change(light, request, run, adopt=answer.open_connection())


def downgrade(url: str | UrlLike, revision: str | targets.Target, *, run: Run | None = None,
              confirm: str | None = None,
              on_applied: Callable[[Applied], None] | None = None) -> Result:
    """Revert to a previous version, one transaction per revision, under the lock.

    Refused (nothing changed) unless ``confirm`` repeats ``revision``: in prod always,
    elsewhere when the downgrade would drop a table that holds rows.
    """
    from alquimista_schema.runtime import skeleton

    request = Change("downgrade", targets.parsed(revision, "down"), confirm=confirm,
                     on_applied=on_applied)
    return skeleton.change(url, request, run or Run(action="downgrade"))


def stamp(url: str | UrlLike, revision: str, *, purge: bool = False, run: Run | None = None,
          confirm: str | None = None) -> Result:
    """Set the revision table to ``revision`` without running any migration.

    ``purge`` (replace whatever is there) in prod needs ``confirm`` repeating ``revision``.
    """
    from alquimista_schema.runtime import skeleton

    request = Change("stamp", targets.parse(revision), confirm=confirm, purge=purge)
    return skeleton.change(url, request, run or Run(action="stamp"))


def adopt(url: str | UrlLike, *, dry_run: bool = False, run: Run | None = None) -> Adoption:
    """Verify a database the legacy files built against every revision; stamp the match."""
    from alquimista_schema.runtime import skeleton

    run = run or Run(action="adopt")
    run.action = "adopt"
    return skeleton.adopt(url, run, dry_run=dry_run)


def current(url: str | UrlLike, *, run: Run | None = None) -> str | None:
    """Return the database's current revision (None when unversioned)."""
    from alquimista_schema.runtime import planning

    return planning.current(url, run or Run())


def verify(url: str | UrlLike, *, run: Run | None = None) -> Verification:
    """Compare the checksums recorded for the applied revisions with the files carried;
    raise ChecksumMismatch naming each revision edited since it was applied."""
    from alquimista_schema.connect.database import connect
    from alquimista_schema.runtime import ledger
    from alquimista_schema.script import directory

    with connect(url, **(run or Run()).connect_options()) as conn:
        found = ledger.verify(conn, directory.script_directory())
    if found.problems:
        raise ChecksumMismatch(
            f"{len(found.problems)} applied revision(s) differ from these revision files",
            [check.describe() for check in found.problems])
    return found


def migration_running(url: str | UrlLike, *, run: Run | None = None) -> str | None:
    """Who holds the migration lock now (a run in progress), or None; takes no lock."""
    from alquimista_schema.connect.database import connect
    from alquimista_schema.runtime import locking

    with connect(url, **(run or Run()).connect_options()) as conn:
        conn.commit()
        return locking.holder(conn.connection.driver_connection)


def history() -> list[RevisionInfo]:
    """List the revisions this release carries, oldest first."""
    from alquimista_schema.script import directory

    return directory.history()


def heads() -> list[str]:
    """Return the head revisions of this release (one, unless branches were merged badly)."""
    from alquimista_schema.script import directory

    return directory.heads()


def plan(url: str | UrlLike, revision: str | targets.Target = "head", *,
         run: Run | None = None) -> Plan:
    """Return what an upgrade to ``revision`` would run, with its SQL and what each
    statement does to the live tables; change nothing."""
    from alquimista_schema.connect.database import connect
    from alquimista_schema.runtime import effects, planning, stepping
    from alquimista_schema.script import authoring, directory, lint

    target = targets.parsed(revision, "up")
    script = directory.script_directory()
    directory.resolve(script, target.name)
    with connect(url, **(run or Run()).connect_options()) as conn:
        start = directory.one(directory.current_heads(script, conn))
        route = planning.route(script, target, start, upgrade=True)
        pending = [directory.info(script, s) for s in route.scripts]
        # Two offline renders, on purpose: the review SQL is Alembic's own offline output
        # (its version-table statements included); the effects need each revision's own
        # statements, as TABLE_POLICY weighs them. Neither can be cut from the other.
        rendered = authoring.sql(f"{start or 'base'}:{route.end}") if pending else ""
        found = effects.of_revisions(conn, stepping.render_upgrades(route.steps))
    findings = lint.load_manifest()
    return Plan(start, route.end, pending, rendered,
                [f for p in pending for f in findings.get(p.revision, [])], found)


def check(url: str | UrlLike, *, metadata: Any = None,
          run: Run | None = None) -> None:
    """Compare the models with a database at head; raise DriftDetected on any difference."""
    from alquimista_schema.autogenerate import compare
    from alquimista_schema.connect.database import connect
    from alquimista_schema.script import directory

    with connect(url, **(run or Run()).connect_options()) as conn:
        compare.check(conn, directory.script_directory(), metadata)


def sql(revision_range: str, *, url: str | UrlLike | None = None) -> str:
    """Return the SQL that moves ``FROM:TO`` (or base to ``TO``), offline, for review."""
    from alquimista_schema.script import authoring

    return authoring.sql(revision_range, url=url)


@dataclass(frozen=True)
class Written:
    """What ``revision`` wrote: the revision file(s), and lint.json with the new findings."""

    revisions: list[Path]
    lint: Path | None = None
    findings: list[Finding] = field(default_factory=list)


def revision(message: str, *, url: str | UrlLike | None = None, autogenerate: bool = False,
             rev_id: str | None = None, metadata: Any = None) -> Written:
    """Write a new revision file (autogenerated from the models when asked), then lint it
    into migrations/lint.json: the new revision needs no other step to be applied."""
    from alquimista_schema.script import authoring, lint

    made = authoring.revision(message, url=url, autogenerate=autogenerate, rev_id=rev_id,
                              metadata=metadata)
    if not made:
        return Written([])
    path, findings = lint.record_missing()
    return Written(made, path, findings)


def applied(at: str | None) -> list[str]:
    """Return the revisions a database at ``at`` has applied, oldest first."""
    from alquimista_schema.script import directory

    return directory.applied(directory.script_directory(), at)
