"""The body of ``env.py``: run migrations online or offline for a given context.

Both ``alembic/env.py`` (the repository's, used by the ``alembic`` command) and
the package's own ``migrations/env.py`` call :func:`run` in one line, so the
Alembic CLI, the package's CLI and the Lambda behave the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory, write_hooks
from alembic.util import CommandError
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import Connection

from alquimista_schema import autogen, introspect, models
from alquimista_schema.errors import ConfigurationError, MissingURL, SchemaError


@write_hooks.register("alquimista_manifest")
def _write_manifest_hook(filename: str, options: dict[str, Any]) -> None:
    """Keep migrations/manifest.json current after `alembic revision` writes a file."""
    from alquimista_schema import migrate

    migrate.write_manifest()


# Defaults for the migration transaction; see README "Timeouts".
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "15min"
_DEFAULT_TIMEOUTS = {"lock_timeout": DEFAULT_LOCK_TIMEOUT,
                     "statement_timeout": DEFAULT_STATEMENT_TIMEOUT}
TIMEOUT_PATTERN = re.compile(r"(\d+)\s*(ms|s|min|h)?")


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
    include_name, include_object = autogen.make_filters(metadata)
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
    """Return the database URL for an online run; raise MissingURL without one."""
    url = configured_url(context)
    if not url:
        raise MissingURL(
            "no database URL: set DATABASE_URL, pass -x url=postgresql://..., or run "
            "`alquimista-schema upgrade`, which starts a local database for you"
        )
    from alquimista_schema.database import parse_url

    return parse_url(url).render_as_string(hide_password=False)


def timeouts(context: EnvironmentContext) -> dict[str, str]:
    """Return lock_timeout and statement_timeout for the migration transactions."""
    x_args = context.get_x_argument(as_dictionary=True)
    return {name: _timeout(name, context.config.attributes.get(name), x_args.get(name),
                           configured=context.config.get_main_option(name))
            for name in _DEFAULT_TIMEOUTS}


def _timeout(name: str, *preferred: str | None, configured: str | None = None) -> str:
    """The first of ``preferred``, else ALQUIMISTA_<NAME>, else ``configured``, else default."""
    value = (next((v for v in preferred if v), None)
             or os.environ.get(f"ALQUIMISTA_{name.upper()}") or configured
             or _DEFAULT_TIMEOUTS[name])
    return validate_timeout(name, str(value))


def validate_timeout(name: str, value: str) -> str:
    """Return ``value`` if it is a PostgreSQL duration we accept, else raise."""
    if not TIMEOUT_PATTERN.fullmatch(value.strip()):
        raise ConfigurationError(f"{name} must look like 250ms, 5s, 2min or 0, not {value!r}")
    return value.strip()


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
    engine = create_engine(resolve_url(context), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run_on(context, conn)
    finally:
        engine.dispose()


def _run_on(context: EnvironmentContext, connection: Connection) -> None:
    context.configure(connection=connection, **configure_kwargs(context))
    if _alembic_cli_command(context) == "upgrade":
        _refuse_unadopted(context, connection)
    if context.config.attributes.get("session_configured"):
        # The caller (migrate) set the timeouts once for all its steps.
        with context.begin_transaction():
            context.run_migrations()
        return
    with session_timeouts(connection, timeouts(context)), context.begin_transaction():
        context.run_migrations()


def _refuse_unadopted(context: EnvironmentContext, connection: Connection) -> None:
    """Refuse to upgrade a legacy-built, unversioned database (our verbs do it under the lock).

    Ends the transaction the version read began, so Alembic still gives each
    revision its own transaction.
    """
    if not context.get_context().get_current_heads():
        introspect.refuse_unadopted(connection)
    if connection.in_transaction():
        connection.commit()


def _alembic_cli_command(context: EnvironmentContext) -> str | None:
    """Return the alembic CLI command being run (``upgrade``...), or None when embedded."""
    cmd = getattr(context.config.cmd_opts, "cmd", None)
    return getattr(cmd[0], "__name__", None) if cmd else None


def default_timeouts(lock_timeout: str | None, statement_timeout: str | None) -> dict[str, str]:
    """Timeouts for a library caller: given, else the environment, else the defaults."""
    return {"lock_timeout": _timeout("lock_timeout", lock_timeout),
            "statement_timeout": _timeout("statement_timeout", statement_timeout)}


@contextmanager
def session_timeouts(connection: Connection, settings: dict[str, str], *,
                     restore: bool = True) -> Iterator[None]:
    """Apply timeouts for the migration transactions, then restore the previous values.

    With one transaction per revision a ``SET LOCAL`` would lapse after the first
    revision, so the settings are made for the session and put back afterwards.
    """
    external = connection.in_transaction()
    previous = {name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in settings} if restore else {}
    for name, value in settings.items():
        connection.exec_driver_sql(f"SELECT set_config('{name}', %(v)s, false)", {"v": value})
    if not external:
        connection.commit()
    try:
        yield
    finally:
        if not connection.closed and not connection.invalidated:
            if connection.in_transaction() and not external:
                connection.rollback()
            for name, prior in previous.items():
                connection.exec_driver_sql(
                    f"SELECT set_config('{name}', %(v)s, false)", {"v": str(prior)})
            if not external:
                connection.commit()


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
        return
    scripts = ScriptDirectory.from_config(context.config)
    numbers = [int(r.revision) for r in scripts.walk_revisions() if r.revision.isdigit()]
    script.rev_id = f"{max(numbers, default=0) + 1:03d}"
