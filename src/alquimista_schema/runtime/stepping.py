"""Where the run meets Alembic's internals: the one module using its non-public API.

Alembic's public API runs whole commands, or hands env.py a function that yields the
steps to run (``EnvironmentContext(config, script, fn=...)``, documented). It has no
public way to list those steps before running them, nor to hand them to a context
that is already running (the plain ``alembic`` command's). The run skeleton needs
both: it plans before it locks, and between revisions it records the one committed
and checks the deadline. ``tests/runtime/test_stepping.py`` pins each behaviour used
here, so an Alembic release that changes one fails a test, not a deploy.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from alembic.script import ScriptDirectory

StepsFn = Callable[[Any, "MigrationContext"], Iterable["RevisionStep"]]


def steps(script: ScriptDirectory, start: str | None, dest: str, *,
          upgrade: bool) -> list[RevisionStep]:
    """Return the steps ``alembic upgrade/downgrade dest`` runs from ``start``, in order.

    Non-public: ``ScriptDirectory._upgrade_revs`` / ``_downgrade_revs``, exactly what
    ``alembic.command.upgrade`` and ``downgrade`` hand to their environment.
    """
    if upgrade:
        return list(script._upgrade_revs(dest, start))  # type: ignore[arg-type]
    return list(script._downgrade_revs(dest, start))


def landing(step: RevisionStep) -> str | None:
    """Where the database is once ``step`` has committed (None: base)."""
    if step.is_upgrade:
        return str(step.revision.revision)
    down = step.revision.down_revision
    return down if isinstance(down, str) else None


def environment(config: Config, script: ScriptDirectory, fn: StepsFn,
                destination: str | None) -> EnvironmentContext:
    """An environment that runs the steps ``fn`` yields (public API, as command.py uses it)."""
    from alembic.runtime.environment import EnvironmentContext

    return EnvironmentContext(config, script, fn=fn, as_sql=False,
                              destination_rev=destination or "base")


def steps_option(fn: StepsFn) -> dict[str, Any]:
    """The ``configure()`` option that makes a running environment run ``fn``'s steps.

    Non-public: ``EnvironmentContext.configure(**kw)`` passes ``fn`` on to the
    MigrationContext, replacing the function the context was made with (the plain
    ``alembic upgrade`` command's own).
    """
    return {"fn": fn}


def without_database() -> dict[str, Any]:
    """The ``configure()`` options that run a context with no database at all.

    Non-public: ``as_sql`` (normally given by the command that makes the context) turns
    the context into an offline one, whose output is thrown away. For the commands that
    read only the revision files (``history``, ``heads``, ``revision`` without
    ``--autogenerate``) but still run env.py (``revision_environment``).
    """
    return {"as_sql": True, "output_buffer": io.StringIO(), "url": "postgresql://",
            "dialect_opts": {"paramstyle": "named"}}


def render_upgrades(steps: list[RevisionStep]) -> list[tuple[str, str]]:
    """(revision, its upgrade's SQL rendered offline) for each upgrade step; a revision
    that cannot be rendered offline (it reads the database) gets ``-- not rendered: ...``.

    A bare MigrationContext, as :func:`render_downgrade`: it works from inside env.py.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    rendered: list[tuple[str, str]] = []
    for step in steps:
        buffer = io.StringIO()
        context = MigrationContext.configure(dialect_name="postgresql", opts={
            "as_sql": True, "output_buffer": buffer, "literal_binds": True})
        try:
            with Operations.context(context):
                step.revision.module.upgrade()
        except Exception as exc:  # a revision's own code may raise anything offline
            buffer = io.StringIO(f"-- not rendered: {type(exc).__name__}\n")
        rendered.append((str(step.revision.revision), buffer.getvalue()))
    return rendered


def render_downgrade(script: ScriptDirectory, start: str | None, dest: str) -> str:
    """Return the SQL of the downgrade from ``start`` to ``dest``, rendered offline.

    A bare MigrationContext (not an EnvironmentContext), so it also works from inside
    env.py, where Alembic's ``context`` proxy is in use.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={
        "as_sql": True, "output_buffer": buffer, "literal_binds": True})
    with Operations.context(context):
        for step in steps(script, start, dest, upgrade=False):
            step.revision.module.downgrade()
    return buffer.getvalue()
