"""The body of ``env.py``: run migrations online or offline for a given context.

Both ``alembic/env.py`` (the repository's, used by the ``alembic`` command) and
the package's own ``migrations/env.py`` call :func:`run` in one line, so the
Alembic CLI, the package's CLI and the Lambda behave the same. A plain ``alembic
upgrade/downgrade/stamp`` runs inside ``skeleton.alembic_command``: the verbs' lock,
standby guard, unadopted-database refusal, downgrade guard and audit.
"""

from __future__ import annotations

import os
import re
import sys
from logging.config import fileConfig
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory, write_hooks
from alembic.util import CommandError
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import Connection

from alquimista_schema import durations, settings
from alquimista_schema.autogenerate import compare
from alquimista_schema.durations import session_timeouts
from alquimista_schema.errors import ConfigurationError, MissingURL, SchemaError
from alquimista_schema.runtime import skeleton
from alquimista_schema.schema import models
from alquimista_schema.script import authoring

__all__ = ["run"]
_GUARDED = ("upgrade", "downgrade", "stamp")


@write_hooks.register("alquimista_manifest")
def _write_manifest_hook(filename: str, options: dict[str, Any]) -> None:
    """Keep migrations/manifest.json current after `alembic revision` writes a file."""
    authoring.write_manifest()


def run(context: EnvironmentContext) -> None:
    """Run the migrations Alembic asked for, online or offline."""
    config = context.config
    embedded = config.attributes.get("embedded") or config.attributes.get("connection")
    if config.config_file_name and not embedded:
        # Only the alembic CLI owns the process's logging; a host program keeps its own.
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        if context.is_offline_mode():
            run_offline(context)
        else:
            run_online(context)
    except SchemaError as exc:
        if embedded:
            raise
        # The alembic CLI prints a CommandError as one "FAILED: ..." line, no traceback.
        raise CommandError(str(exc)) from exc


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
    callbacks = context.config.attributes.get("on_version_apply")
    if callbacks:
        kwargs["on_version_apply"] = callbacks
    return kwargs


def configured_url(context: EnvironmentContext) -> str | None:
    """The caller's URL, else DATABASE_URL, else ``-x url=``, else alembic.ini's."""
    config = context.config
    url = (
        config.attributes.get("url")
        or os.environ.get("DATABASE_URL")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    return str(url) if url else None


def resolve_url(context: EnvironmentContext) -> str:
    """Return the database URL for an online run: the configured one, else (for
    ``alembic upgrade/downgrade/stamp``) the local database, as `alquimista-schema` does."""
    url = configured_url(context)
    if not url and _alembic_cli_command(context) in _GUARDED:
        url = local_database_url()
    if not url:
        raise MissingURL("no database URL: set DATABASE_URL or pass -x url=postgresql://...")
    from alquimista_schema.connect.database import parse_url

    return parse_url(url).render_as_string(hide_password=False)


def local_database_url() -> str:
    """The local database (started if needed), announced in one line on stderr."""
    from alquimista_schema.connect import local as devdb

    url = devdb.local_url(lambda line: print(line, file=sys.stderr))
    return url.render_as_string(hide_password=False)


def timeouts(context: EnvironmentContext) -> dict[str, str]:
    """Return lock_timeout and statement_timeout for the migration transactions."""
    x_args = context.get_x_argument(as_dictionary=True)
    return {name: durations.setting(name, context.config.attributes.get(name), x_args.get(name),
                           configured=context.config.get_main_option(name))
            for name in durations.DEFAULTS}


def run_offline(context: EnvironmentContext) -> None:
    """Emit SQL to the output instead of running it."""
    url = configured_url(context) or "postgresql://"  # offline needs only the dialect
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **configure_kwargs(context))
    with context.begin_transaction():
        for name, value in timeouts(context).items():
            context.execute(f"SET {name} = '{value}'")
        context.run_migrations()


def run_online(context: EnvironmentContext) -> None:
    """Run against a connection: the caller's, or one opened from the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None and not isinstance(connection, Connection):
        # An engine or engine-like connectable (pytest-alembic hands one in).
        with connection.connect() as conn:
            _run_on(context, conn)
        return
    if connection is not None:
        _run_on(context, connection)
        return
    url = resolve_url(context)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            command = _alembic_cli_command(context)
            if command not in _GUARDED:
                _run_on(context, conn)
                return
            with skeleton.alembic_command(url, conn, context.script,
                                         **_cli_request(context, command)) as progress:
                context.config.attributes["on_version_apply"] = [skeleton.recorder(progress)]
                _run_on(context, conn)
    finally:
        engine.dispose()


def _cli_request(context: EnvironmentContext, command: str) -> dict[str, Any]:
    """What the alembic command asks for: action, target, -x confirm, ENVIRONMENT."""
    opts = context.config.cmd_opts
    target = getattr(opts, "revision", None) or " ".join(getattr(opts, "revisions", None) or [])
    return {"action": command, "target": target,
            "confirm": context.get_x_argument(as_dictionary=True).get("confirm"),
            "purge": bool(getattr(opts, "purge", False)),
            "environment": settings.environment_name(os.environ.get("ENVIRONMENT"))}


def _run_on(context: EnvironmentContext, connection: Connection) -> None:
    context.configure(connection=connection, **configure_kwargs(context))
    if context.config.attributes.get("session_configured"):
        # The caller (migrate) set the timeouts once for all its steps.
        with context.begin_transaction():
            context.run_migrations()
        return
    with session_timeouts(connection, timeouts(context)), context.begin_transaction():
        context.run_migrations()


def _alembic_cli_command(context: EnvironmentContext) -> str | None:
    """Return the alembic CLI command being run (``upgrade``...), or None when embedded."""
    cmd = getattr(context.config.cmd_opts, "cmd", None)
    return getattr(cmd[0], "__name__", None) if cmd else None


def number_revisions(context: Any, revision: Any, directives: list[Any]) -> None:
    """Number new revisions after the legacy files (018, 019, ...) unless given an id.

    Alembic's generated ids are 12 random hex digits; an explicit ``--rev-id`` is kept.
    """
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
    scripts = ScriptDirectory.from_config(context.config)
    numbers = [int(r.revision) for r in scripts.walk_revisions() if r.revision.isdigit()]
    script.rev_id = f"{max(numbers, default=0) + 1:03d}"
