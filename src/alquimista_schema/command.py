"""The verbs: upgrade, downgrade, current, stamp, plan, check, history, heads, sql, revision.

Each is a short function shaped like Alembic's own (``alembic/command.py``). The
verbs that change a database run through the run machinery (skeleton.py: lock,
standby guard, audit, one transaction per revision within the deadline); authoring
(new revisions, offline SQL) is in authoring.py. Importing this module loads
neither SQLAlchemy nor Alembic: "already at head" is answered without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alquimista_schema import targets
from alquimista_schema.connect import dsn
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import DriftDetected, NotAtHead
from alquimista_schema.runtime import probe
from alquimista_schema.runtime.run import Applied, Result, Run, default_actor
from alquimista_schema.script import directory

if TYPE_CHECKING:
    from collections.abc import Callable

    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData
    from sqlalchemy.engine import URL

    from alquimista_schema.script.lint import Finding

__all__ = ["Applied", "Plan", "Result", "RevisionInfo", "Run", "applied_revisions", "check",
           "current", "current_heads", "default_actor", "downgrade", "heads", "history", "plan",
           "resolve", "revision", "script_directory", "sql", "stamp", "upgrade",
           "write_manifest"]


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    description: str
    is_head: bool


@dataclass(frozen=True)
class Plan:
    from_revision: str | None
    to_revision: str | None
    pending: list[RevisionInfo]
    sql: str
    findings: list[Finding]
    """squawk's findings for the pending revisions (waived ones say why)."""


def script_directory() -> ScriptDirectory:
    return directory.script_directory()


def resolve(script: ScriptDirectory, revision: str) -> None:
    """Raise InvalidTarget/UnknownRevision unless ``revision`` names a place in the history."""
    directory.resolve(script, targets.parse(revision).name)


def current_heads(script: ScriptDirectory, conn: Any) -> tuple[str, ...]:
    """Return the database's revisions (see planning.current_heads)."""
    from alquimista_schema.runtime import planning

    return planning.current_heads(script, conn)


def _fast(url: Any, run: Run) -> probe.Answer:
    """Ask "already at head?" once, inside the run's budget."""
    remaining = run.remaining()
    wait = float(run.connect_timeout) if remaining is None else \
        max(min(float(run.connect_timeout), remaining), 1.0)
    return probe.probe(url, connect_timeout=wait, statement_timeout=wait,
                          application_name=run.application_name)


def upgrade(url: str | URL | Dsn, revision: str = "head", *, run: Run | None = None,
            on_applied: Callable[[Applied], None] | None = None) -> Result:
    """Upgrade to a later version, one transaction per revision, under the lock.

    "Already at head" is answered by one query, without loading the revisions
    (see probe.py); otherwise the full path runs on the connection that asked.
    """
    run = run or Run(action="upgrade")
    target = targets.parse(revision, "up")
    # Read as fields (a Dsn): parsing into a SQLAlchemy URL would load SQLAlchemy (~200 ms).
    light = dsn.parse(url) if isinstance(url, str) else url
    answer = probe.Answer(None)
    if target.name in ("head", "heads") and not target.relative:
        answer = _fast(light, run)
        if answer.head is not None:
            return Result(answer.head, answer.head, [])
    # Only now: running loads SQLAlchemy and Alembic (~400 ms), which a no-op never needs.
    from alquimista_schema.runtime import skeleton

    script = script_directory()
    directory.resolve(script, target.name)
    request = skeleton.Move(target, upgrade=True, on_applied=on_applied)
    adopt = answer.connection if answer.connection is not None \
        and not answer.connection.closed else None
    # ``light``: the URL parsed once (database.connect takes a Dsn as it is).
    return skeleton.move(light, request, run, script=script, adopt=adopt).result()


def downgrade(url: str | URL | Dsn, revision: str, *, run: Run | None = None,
              confirm: str | None = None,
              on_applied: Callable[[Applied], None] | None = None) -> Result:
    """Revert to a previous version, one transaction per revision, under the lock.

    Refused (nothing changed) unless ``confirm`` repeats ``revision``: in prod always,
    elsewhere when the downgrade would drop a table that holds rows.
    """
    from alquimista_schema.runtime import guards, skeleton

    run = run or Run(action="downgrade")
    target = targets.parse(revision, "down")
    guards.refuse_in_prod(run.environment, "downgrade", revision, confirm)
    script = script_directory()
    directory.resolve(script, target.name)
    request = skeleton.Move(target, upgrade=False, confirm=confirm, on_applied=on_applied)
    return skeleton.move(url, request, run, script=script).result()


def current(url: str | URL | Dsn, *, run: Run | None = None) -> str | None:
    """Return the database's current revision (None when unversioned)."""
    from alquimista_schema.runtime import planning

    run = run or Run()
    with run.connection(url) as conn:
        return planning.one(planning.current_heads(script_directory(), conn))


def stamp(url: str | URL | Dsn, revision: str, *, purge: bool = False, run: Run | None = None,
          confirm: str | None = None) -> Result:
    """Set the revision table to ``revision`` without running any migration.

    ``purge`` in prod needs ``confirm`` repeating ``revision``.
    """
    import io

    from alembic import command as alembic_command
    from alquimista_schema.runtime import guards, planning, skeleton

    run = run or Run(action="stamp")
    target = targets.parse(revision)
    if purge:
        guards.refuse_in_prod(run.environment, "stamp --purge", revision, confirm)
    script = script_directory()
    directory.resolve(script, target.name)
    with skeleton.locked(url, run, revision) as progress, run.connection(url) as conn:
        if not purge:
            progress.at(planning.one(planning.current_heads(script, conn)))
        config = directory.make_config(connection=conn, stdout=io.StringIO())
        alembic_command.stamp(config, revision, purge=purge)
        progress.to_revision = planning.one(planning.current_heads(script, conn))
        progress.changed = True
    return progress.result()


def _info(script: ScriptDirectory, rev: Any) -> RevisionInfo:
    down = rev.down_revision if isinstance(rev.down_revision, str) else None
    return RevisionInfo(rev.revision, down, directory.describe(rev),
                        rev.revision in script.get_heads())


def history() -> list[RevisionInfo]:
    """List the revisions this release carries, oldest first."""
    script = script_directory()
    return [_info(script, r) for r in directory.chain(script)]


def applied_revisions(script: ScriptDirectory, at: str | None) -> list[str]:
    """Return the revisions applied in a database at ``at``, oldest first."""
    if at is None:
        return []
    return [r.revision for r in reversed(list(script.iterate_revisions(at, "base")))]


def heads() -> list[str]:
    """Return the head revisions of this release (one, unless branches were merged badly)."""
    return list(script_directory().get_heads())


def plan(url: str | URL | Dsn, revision: str = "head", *, run: Run | None = None) -> Plan:
    """Return what an upgrade to ``revision`` would run, with its SQL; change nothing."""
    from alquimista_schema.runtime import planning
    from alquimista_schema.script import lint

    target = targets.parse(revision, "up")
    script = script_directory()
    directory.resolve(script, target.name)
    run = run or Run()
    with run.connection(url) as conn:
        start = planning.one(planning.current_heads(script, conn))
    pending = [_info(script, s)
               for s in planning.plan(script, target, start, upgrade=True).scripts]
    end = pending[-1].revision if pending else start
    rendered = sql(f"{start or 'base'}:{end}") if pending else ""
    manifest = lint.load_manifest()
    findings = [f for p in pending for f in manifest.get(p.revision, [])]
    return Plan(start, end, pending, rendered, findings)


def check(url: str | URL | Dsn, *, metadata: MetaData | None = None,
          run: Run | None = None) -> None:
    """Compare the models with a database at head; raise DriftDetected on any difference."""
    import io

    from alembic.util import AutogenerateDiffsDetected

    from alembic import command as alembic_command
    from alquimista_schema.autogenerate import compare
    from alquimista_schema.runtime import planning

    run = run or Run()
    extra: dict[str, Any] = {"target_metadata": metadata} if metadata is not None else {}
    script = script_directory()
    with run.connection(url) as conn:
        at = planning.one(planning.current_heads(script, conn))
        head = script.get_current_head()
        if at != head:
            raise NotAtHead(
                f"the database is at {at or 'base'}, not at head {head}: upgrade it first "
                "(check compares the models with a database at head)")
        config = directory.make_config(connection=conn, stdout=io.StringIO(), **extra)
        try:
            alembic_command.check(config)
        except AutogenerateDiffsDetected as exc:
            differences = [compare.describe_diff(d) for d in exc.diffs]
            raise DriftDetected(
                f"{len(differences)} difference(s) between the models and the revisions",
                differences) from exc


def sql(revision_range: str, *, url: str | URL | None = None) -> str:
    """Return the SQL that moves ``FROM:TO`` (or base to ``TO``), without a database."""
    from alquimista_schema.script import authoring

    return authoring.sql(revision_range, url=url)


def revision(message: str, *, url: str | URL | None = None, autogenerate: bool = False,
             rev_id: str | None = None, metadata: MetaData | None = None) -> list[Path]:
    """Write a new revision file (autogenerated from the models when asked)."""
    from alquimista_schema.script import authoring

    return authoring.revision(message, url=url, autogenerate=autogenerate, rev_id=rev_id,
                              metadata=metadata)


def write_manifest(*, built: bool = False) -> Path:
    """Record the head for the no-op fast path (done for you by `revision`)."""
    from alquimista_schema.script import authoring

    return authoring.write_manifest(built=built)
