"""How a run's Alembic work is carried out: one executor per way of running.

The skeleton decides what to do (plan, lock, guard, apply, record); an executor decides
how Alembic is called for it, as pytest-alembic separates the two. Two ways exist:

- :class:`OwnRun`: the package's own Alembic run (the CLI, the Lambda, the library), on
  the package's script directory, through Alembic's public command API;
- :class:`WithinAlembic`: inside the plain ``alembic`` command's environment (env.py is
  already running), which then runs the steps itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alquimista_schema.runtime import configure, stepping
from alquimista_schema.script import directory

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class OwnRun:
    """The package's own run: its script directory, its own Alembic run."""

    script: ScriptDirectory

    def run_steps(self, conn: Connection, steps: stepping.StepsFn, end: str | None,
                  record: list[Callable[..., None]]) -> None:
        """Run ``steps`` in one Alembic run (env.py once), recording each version."""
        config = directory.make_config(connection=conn, stdout=io.StringIO(),
                                       session_configured=True, on_version_apply=record)
        with stepping.environment(config, self.script, steps, end):
            self.script.run_env()

    def stamp(self, conn: Connection, target: str, purge: bool) -> None:
        """Alembic's own stamp, through its command API."""
        from alembic import command as alembic_command

        config = directory.make_config(connection=conn, stdout=io.StringIO())
        alembic_command.stamp(config, target, purge=purge)


@dataclass(frozen=True)
class WithinAlembic:
    """The plain ``alembic`` command's environment: it runs what it was asked."""

    context: EnvironmentContext

    @property
    def script(self) -> ScriptDirectory:
        return self.context.script

    def run_steps(self, conn: Connection, steps: stepping.StepsFn, end: str | None,
                  record: list[Callable[..., None]]) -> None:
        """Run ``steps`` in the command's own environment (its end is the command's)."""
        self.context.config.attributes.update(session_configured=True, on_version_apply=record)
        configure.run_on(self.context, conn, steps=steps)

    def stamp(self, conn: Connection, target: str, purge: bool) -> None:
        """The command's own stamp (its target and --purge are the request's)."""
        configure.run_on(self.context, conn)


Executor = OwnRun | WithinAlembic


def of(within: Any = None) -> Executor:
    """The executor for a run: within the plain command's environment, else our own."""
    return WithinAlembic(within) if within is not None else OwnRun(directory.script_directory())
