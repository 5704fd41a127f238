"""How an Alembic environment is configured here, for every door alike.

The models as target metadata, the ownership filters, one transaction per revision,
new revisions numbered after the legacy files. ``run_on`` runs a configured context
on a connection; the run skeleton hands it the steps to run (see stepping.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from alquimista_schema import durations
from alquimista_schema.autogenerate import compare
from alquimista_schema.errors import ConfigurationError
from alquimista_schema.runtime import stepping
from alquimista_schema.runtime.timeouts import session_timeouts
from alquimista_schema.schema import models
from alquimista_schema.script import authoring

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from alquimista_schema.settings import Settings


def target_metadata(context: EnvironmentContext) -> MetaData:
    md: MetaData | None = context.config.attributes.get("target_metadata")
    return md if md is not None else models.metadata


def configure_kwargs(context: EnvironmentContext) -> dict[str, Any]:
    metadata = target_metadata(context)
    include_name, include_object = compare.make_filters(metadata)
    kwargs: dict[str, Any] = {
        "target_metadata": metadata,
        "compare_type": True,
        "compare_server_default": True,
        "include_name": include_name,
        "include_object": include_object,
        "include_schemas": False,
        # One transaction per revision: a failing revision rolls back to the one
        # before it, and NOT VALID / VALIDATE can live in separate revisions.
        "transaction_per_migration": True,
        "process_revision_directives": number_revisions,
    }
    callbacks = context.config.attributes.get("on_version_apply")  # an embedder's hook
    if callbacks:
        kwargs["on_version_apply"] = callbacks
    return kwargs


def timeouts(context: EnvironmentContext, read: Settings | None = None) -> dict[str, str]:
    """Return lock_timeout and statement_timeout: the caller's, else ``-x``, else the
    settings plain ``alembic`` read from its environment (``read``), else the ini, else the
    defaults (the precedence settings.local gives)."""
    x_args = context.get_x_argument(as_dictionary=True)
    return {name: durations.setting(name, context.config.attributes.get(name), x_args.get(name),
                                    getattr(read, name, None),
                                    configured=context.config.get_main_option(name))
            for name in durations.DEFAULTS}


def run_on(context: EnvironmentContext, connection: Connection, *,
           steps: stepping.StepsFn | None = None, read: Settings | None = None) -> None:
    """Configure ``context`` on ``connection`` and run its migrations (``steps``' if given).

    The run skeleton sets the session's timeouts once for all its revisions
    (``session_configured``); anything else run here gets them for its own run.
    """
    extra: dict[str, Any] = stepping.steps_option(steps) if steps is not None else {}
    context.configure(connection=connection, **{**configure_kwargs(context), **extra})
    if context.config.attributes.get("session_configured"):
        with context.begin_transaction():
            context.run_migrations()
        return
    with session_timeouts(connection, timeouts(context, read)), context.begin_transaction():
        context.run_migrations()


def run_without_database(context: EnvironmentContext) -> None:
    """Run ``context``'s command with no database: it reads only the revision files."""
    context.configure(**{**configure_kwargs(context), **stepping.without_database()})
    with context.begin_transaction():
        context.run_migrations()


def number_revisions(context: Any, revision: Any, directives: list[Any]) -> None:
    """Number new revisions after the legacy files (018, 019, ...) unless given an id.

    Alembic's generated ids are 12 random hex digits; an explicit ``--rev-id`` is kept.
    """
    from alembic.script import ScriptDirectory

    if not directives:
        return
    script = directives[0]
    cmd_opts = getattr(context.config, "cmd_opts", None)
    autogenerate = context.config.attributes.get("autogenerate") or getattr(
        cmd_opts, "autogenerate", False)
    if autogenerate and script.upgrade_ops.is_empty():
        directives[:] = []  # nothing changed: write no empty revision
        context.config.attributes["nothing_to_write"] = True
        return
    if not re.fullmatch(r"[0-9a-f]{12}", script.rev_id or ""):
        if not authoring.REV_ID.fullmatch(script.rev_id or ""):
            raise ConfigurationError(  # it becomes a file name: never outside versions/
                f"--rev-id must be 1 to 40 letters, digits or underscores, not {script.rev_id!r}")
        return
    revisions = ScriptDirectory.from_config(context.config)
    numbers = [int(r.revision) for r in revisions.walk_revisions() if r.revision.isdigit()]
    script.rev_id = f"{max(numbers, default=0) + 1:03d}"
