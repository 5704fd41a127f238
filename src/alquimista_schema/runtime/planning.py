"""Where the database is, and where a target leads: the plan of a move, computed once.

The steps are Alembic's own ``RevisionStep`` objects, handed to a single Alembic run as
they are (running.py); relative targets are checked against the history here, before
any lock is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alquimista_schema.errors import UnknownDatabaseRevision, UnknownRevision
from alquimista_schema.runtime import guards
from alquimista_schema.script import directory
from alquimista_schema.targets import Target

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy.engine import Connection


def current_heads(script: ScriptDirectory, conn: Connection) -> tuple[str, ...]:
    """Return the database's revisions; raise if one is unknown to this release."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    heads = MigrationContext.configure(conn).get_current_heads()
    if conn.in_transaction():
        conn.commit()
    for head in heads:
        try:
            script.get_revision(head)
        except (CommandError, RevisionError) as exc:
            raise UnknownDatabaseRevision(
                f"the database is at revision {head!r}, which this release of "
                f"alquimista-schema does not know (its head is {script.get_current_head()!r}): "
                "it was probably migrated by a newer release; use that release (or, to "
                "overwrite the version table, `stamp <revision> --purge`)") from exc
    return heads


def one(heads: tuple[str, ...]) -> str | None:
    return heads[0] if heads else None


def destination(script: ScriptDirectory, target: Target, start: str | None, *,
                upgrade: bool = False) -> str:
    """Turn a relative target into the revision it reaches; raise if that is off the history."""
    if not target.relative or len(script.get_heads()) != 1:
        return target.text  # absolute (or a branched history: Alembic decides)
    order = ["base", *(r.revision for r in directory.chain(script))]
    if target.name is None:
        anchor = start or "base"
    elif target.name in ("head", "heads"):
        anchor = order[-1]
    elif target.name == "base":
        anchor = "base"
    else:
        anchor = script.get_revision(target.name).revision
    index = order.index(anchor) + target.steps
    if not int(upgrade) <= index < len(order):  # an upgrade never lands on base
        room = len(order) - 1 - order.index(anchor) if target.steps > 0 else order.index(anchor)
        way = "after" if target.steps > 0 else "before"
        raise UnknownRevision(
            f"cannot move to {target.text!r}: {anchor} has {room} revision(s) {way} it, not "
            f"{abs(target.steps)}; nothing was done. Known revisions: {', '.join(order[1:])}")
    return order[index]


def steps(script: ScriptDirectory, start: str | None, dest: str, *,
          upgrade: bool) -> list[Any]:
    """Return Alembic's migration steps (``RevisionStep``), in the order they run."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        if upgrade:
            return list(script._upgrade_revs(dest, start))  # type: ignore[arg-type]
        return list(script._downgrade_revs(dest, start))
    except (CommandError, RevisionError, AssertionError) as exc:
        verb = "upgrade" if upgrade else "downgrade"
        raise UnknownRevision(f"cannot {verb} from {start or 'base'} to {dest!r}: "
                              f"{str(exc) or 'past the end of the history'}") from exc


def landing(step: Any) -> str | None:
    """Where the database is once ``step`` has committed (None: base)."""
    if step.is_upgrade:
        return str(step.revision.revision)
    down = step.revision.down_revision
    return down if isinstance(down, str) else None


@dataclass
class Plan:
    """What a move will do from ``start``: computed once before the lock (again only if
    the database moved meanwhile), then handed to Alembic as it is."""

    start: str | None
    steps: list[Any]
    """Alembic's ``RevisionStep`` objects, in order."""
    dropped: list[str] = field(default_factory=list)
    """Tables a downgrade drops (read from its offline SQL)."""

    @property
    def scripts(self) -> list[Script]:
        return [step.revision for step in self.steps]


def plan(script: ScriptDirectory, target: Target, start: str | None, *, upgrade: bool) -> Plan:
    found = steps(script, start, destination(script, target, start, upgrade=upgrade),
                  upgrade=upgrade)
    dropped = [] if upgrade or not found else guards.dropped_tables(
        script, start, landing(found[-1]) or "base")
    return Plan(start, found, dropped)
