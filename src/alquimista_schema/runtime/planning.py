"""Where a target leads from where the database is: the route of a move, computed once.

The steps are Alembic's own (see stepping.py), handed to a single Alembic run as they
are; relative targets are checked against the history here, before any lock is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alquimista_schema.errors import UnknownRevision
from alquimista_schema.runtime import guards, stepping
from alquimista_schema.script import directory
from alquimista_schema.targets import Target

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep
    from alembic.script import Script, ScriptDirectory

    from alquimista_schema.runtime.run import Run


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
          upgrade: bool) -> list[RevisionStep]:
    """Return Alembic's steps from ``start`` to ``dest``, in the order they run."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return stepping.steps(script, start, dest, upgrade=upgrade)
    except (CommandError, RevisionError, AssertionError) as exc:
        verb = "upgrade" if upgrade else "downgrade"
        raise UnknownRevision(f"cannot {verb} from {start or 'base'} to {dest!r}: "
                              f"{str(exc) or 'past the end of the history'}") from exc


@dataclass
class Route:
    """What a move does from ``start``: computed once before the lock (again only if the
    database moved meanwhile), then handed to Alembic as it is."""

    start: str | None
    steps: list[Any]
    """Alembic's ``RevisionStep`` objects, in order."""
    dropped: list[guards.Table] = field(default_factory=list)
    """Tables a downgrade drops (read from its offline SQL)."""

    @property
    def scripts(self) -> list[Script]:
        return [step.revision for step in self.steps]

    @property
    def end(self) -> str | None:
        """Where the database is once every step has committed."""
        return stepping.landing(self.steps[-1]) if self.steps else self.start


def route(script: ScriptDirectory, target: Target, start: str | None, *,
          upgrade: bool) -> Route:
    found = steps(script, start, destination(script, target, start, upgrade=upgrade),
                  upgrade=upgrade)
    dropped = [] if upgrade or not found else guards.dropped(
        script, start, stepping.landing(found[-1]) or "base")
    return Route(start, found, dropped)


def current(url: Any, run: Run) -> str | None:
    """Return the database's current revision (None when unversioned)."""
    from alquimista_schema.connect.database import connect

    with connect(url, **run.connect_options()) as conn:
        return directory.one(directory.current_heads(directory.script_directory(), conn))
