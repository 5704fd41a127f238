"""The body of ``env.py``: run migrations online or offline, for every door.

Both ``alembic/env.py`` (the repository's, for the ``alembic`` command) and the
package's own ``migrations/env.py`` call :func:`run` in one line. Inside a run of the
package's own (the CLI, the Lambda) the context comes with its connection and its
steps. A plain ``alembic`` command is served here as ``alquimista-schema`` serves it:
the same URL rules (the local database when none is given, announced in one line),
the same one-line errors, and ``upgrade``/``downgrade``/``stamp`` handed to the run
skeleton with Alembic's own context (``within``): the same lock, guards, audit, pacing
and record. Commands that only read the revision files need no database at all.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from logging.config import fileConfig
from typing import TYPE_CHECKING, Any

from alembic.script import write_hooks
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from alquimista_schema import settings, targets
from alquimista_schema.connect import local
from alquimista_schema.connect.database import connect, parse_url
from alquimista_schema.errors import (
    ConfigurationError,
    MissingURL,
    SchemaError,
    UnknownDatabaseRevision,
)
from alquimista_schema.runtime import configure, skeleton
from alquimista_schema.runtime.run import Change, Run
from alquimista_schema.script import authoring, directory, lint

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext

__all__ = ["run"]
_GUARDED = {"upgrade": "applied", "downgrade": "reverted", "stamp": "stamped"}
_DIRECTION: dict[str, targets.Direction] = {"upgrade": "up", "downgrade": "down"}
# Which alembic commands need a database, by their options; the others (history, heads,
# show, branches, revision without --autogenerate...) read only the revision files.
_NEEDS_DATABASE: dict[str, Callable[[Any], bool]] = {
    "upgrade": lambda opts: True, "downgrade": lambda opts: True,
    "stamp": lambda opts: True, "current": lambda opts: True, "check": lambda opts: True,
    "ensure_version": lambda opts: True,
    "revision": lambda opts: bool(getattr(opts, "autogenerate", False)),
    "history": lambda opts: bool(getattr(opts, "indicate_current", False)),
}


@write_hooks.register("alquimista_manifest")
def _write_manifest_hook(filename: str, options: dict[str, Any]) -> None:
    """Keep migrations/manifest.json and lint.json current after `alembic revision`
    writes a file, as the CLI's ``revision`` does."""
    authoring.write_manifest()
    _, findings = lint.record_missing()
    for f in findings:
        if not f.waived:
            print(f"lint: {f.revision}:{f.line} {f.rule} (NOT WAIVED: fix it, or waive it in "
                  "the revision's SQUAWK_WAIVERS with a reason)", file=sys.stderr)


def run(context: EnvironmentContext) -> None:
    """Run the migrations Alembic asked for, online or offline."""
    config = context.config
    embedded = config.attributes.get("embedded") or config.attributes.get("connection")
    if config.config_file_name and not embedded:
        # Only the alembic CLI owns the process's logging; a host program keeps its own.
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    try:
        _known_x_keys(context.get_x_argument(as_dictionary=True))
        # Plain alembic's settings, read once, as the CLI reads them; inside the package's
        # own run (embedded) its door has read them already.
        read = None if embedded else settings.local(os.environ)
        if context.is_offline_mode():
            run_offline(context, read)
        else:
            run_online(context, read)
    except SchemaError as exc:
        if embedded:
            raise
        # The alembic CLI prints a CommandError as "FAILED: ...", no traceback; the
        # details (each difference, each edited revision) follow, as the CLI lists them.
        raise CommandError("\n".join([str(exc), *(f"  - {d}" for d in exc.details)])) \
            from exc


# Every -x key this env.py reads; any other is a typo, refused before anything runs.
X_KEYS = ("url", "confirm", "accept_checksums", "lock_timeout", "statement_timeout")


def _known_x_keys(x_args: dict[str, str]) -> None:
    """Refuse an unknown ``-x`` key, naming the nearest known one (never ignored)."""
    for key in x_args:
        if key not in X_KEYS:
            near = difflib.get_close_matches(key, X_KEYS, n=1)
            hint = f"did you mean -x {near[0]}=...? " if near else ""
            raise ConfigurationError(f"unknown -x key {key[:40]!r}: {hint}(known: "
                                     f"{', '.join(X_KEYS)}); nothing was run")


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
    """The configured URL, else the local database (started if needed, announced in one
    line on stderr), as `alquimista-schema` does; a wrong URL is a one-line error."""
    url = configured_url(context) or local_database_url()
    return parse_url(url).render_as_string(hide_password=False)


def local_database_url() -> str:
    """The local database (started if needed), announced in one line on stderr."""
    try:
        url = local.local_url(lambda line: print(line, file=sys.stderr))
    except MissingURL:
        raise MissingURL("no database URL: set DATABASE_URL or pass -x url=postgresql://... "
                         "(the local database is switched off by ALQUIMISTA_DEVDB)") from None
    return url.render_as_string(hide_password=False)


def run_offline(context: EnvironmentContext, read: settings.Settings | None = None) -> None:
    """Emit SQL to the output instead of running it (for review: never replayed)."""
    url = configured_url(context) or "postgresql://"  # offline needs only the dialect
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **configure.configure_kwargs(context))
    with context.begin_transaction():
        for name, value in configure.timeouts(context, read).items():
            context.execute(f"SET {name} = '{value}'")
        context.run_migrations()


def run_online(context: EnvironmentContext, read: settings.Settings | None = None) -> None:
    """Run against a connection: the caller's, or one opened from the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None and not isinstance(connection, Connection):
        # An engine or engine-like connectable (pytest-alembic hands one in).
        with connection.connect() as conn:
            configure.run_on(context, conn, read=read)
        return
    if connection is not None:
        configure.run_on(context, connection, read=read)
        return
    command = _alembic_cli_command(context)
    if not _NEEDS_DATABASE.get(command or "", lambda opts: False)(context.config.cmd_opts):
        configure.run_without_database(context)
        return
    on_local = configured_url(context) is None
    url = resolve_url(context)
    try:
        # The alembic CLI's own upgrade, downgrade or stamp, with the settings run() read;
        # an embedded run (read None) is guarded by the package's run that embeds it.
        if command in _GUARDED and read is not None:
            _run_guarded(context, command, url, read)
            return
        with connect(url) as conn:
            directory.current_heads(context.script, conn)  # one that we know, or say so
            if command == "revision":  # --autogenerate: Alembic's own refusal names nothing
                directory.require_head(context.script, conn, "autogenerate")
            configure.run_on(context, conn, read=read)
    except UnknownDatabaseRevision as exc:
        if not on_local:
            raise
        raise exc.on_local_database() from exc


def _run_guarded(context: EnvironmentContext, command: str, url: str,
                 read: settings.Settings) -> None:
    """upgrade, downgrade, stamp: the run skeleton, saying what it did as the CLI does."""
    say = context.config.print_stdout
    request = _cli_change(context, command, on_applied=lambda item: say(item.line()))
    times = configure.timeouts(context, read)
    run = Run.from_settings(read, action=command, **times)
    result = skeleton.change(url, request, run, within=context)
    for warning in result.warnings:
        say(f"warning: {warning}")
    if result.restorable_until is not None:  # an Aurora cluster is named: PITR applies
        say(str(result.restore_line()))
    if command == "stamp":
        say(f"stamped {result.to_revision or 'base'} (was {result.from_revision or 'base'})")
    else:
        say(result.summary(_GUARDED[command], request.target.text))


def _cli_change(context: EnvironmentContext, command: str, **extra: Any) -> Change:
    """What the alembic command asks for: its target, ``--purge``, ``-x confirm=REV``,
    ``-x accept_checksums=true``."""
    opts = context.config.cmd_opts
    target = getattr(opts, "revision", None) or " ".join(getattr(opts, "revisions", None) or [])
    x_args = context.get_x_argument(as_dictionary=True)
    return Change(command, targets.parse(target, _DIRECTION.get(command)),
                  confirm=x_args.get("confirm"), purge=bool(getattr(opts, "purge", False)),
                  accept_checksums=_x_flag(x_args, "accept_checksums"), **extra)


def _x_flag(x_args: dict[str, str], name: str) -> bool:
    """``-x name=true`` or ``false`` (any case); anything else is refused, never guessed."""
    value = x_args.get(name, "false")
    if value.lower() not in ("true", "false"):
        raise ConfigurationError(f"-x {name} must be true or false, not {value[:40]!r}")
    return value.lower() == "true"


def _alembic_cli_command(context: EnvironmentContext) -> str | None:
    """Return the alembic CLI command being run (``upgrade``...), or None when embedded."""
    cmd = getattr(context.config.cmd_opts, "cmd", None)
    return getattr(cmd[0], "__name__", None) if cmd else None
