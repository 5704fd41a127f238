"""What every CLI command shares: error reporting, output that never stops work, options.

Exit codes live here: 0 success, 1 an error the message explains (``Failure``), 2 a
usage error (click's ``UsageError``). The library never exits; the commands raise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import IO, Any, TypeVar

import click

from alquimista_schema import settings
from alquimista_schema.errors import (
    ConfigurationError,
    InvalidTarget,
    SchemaError,
    UnknownDatabaseRevision,
)
from alquimista_schema.runtime.run import Run
from alquimista_schema.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Failure(click.ClickException):
    """An error the message explains: printed as ``error: ...`` (and its list), exit 1."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []

    def show(self, file: IO[Any] | None = None) -> None:
        say(f"error: {self.message}{':' if self.details else ''}", err=True)
        for line in self.details:
            say(f"  - {line}", err=True)


def say(line: str, *, err: bool = False, nl: bool = True) -> None:
    """Print ``line``; a closed pipe (``upgrade | head``) silences output, never the work."""
    try:
        click.echo(line, err=err, nl=nl)
    except BrokenPipeError:
        # Point the stream at /dev/null, so neither later lines nor the interpreter's
        # final flush raise again; the migration carries on and its exit code stands.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (sys.stderr if err else sys.stdout).fileno())


def handle_errors(fn: F) -> F:
    """Turn the package's errors into one clear line (a traceback with --traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        root = click.get_current_context().find_root()
        traceback = bool(root.obj and root.obj.get("traceback"))
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.Abort):
            raise  # click prints these and picks the exit code (2 for usage errors)
        except Exception as exc:
            if traceback:
                raise
            raise _translate(exc) from None

    return wrapper  # type: ignore[return-value]


def _translate(exc: Exception) -> click.ClickException:
    if isinstance(exc, InvalidTarget):
        return click.UsageError(str(exc))
    if isinstance(exc, SchemaError):
        return Failure(str(exc), exc.details)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return Failure(f"unexpected {type(exc).__name__}: {first} (a bug: run with --traceback "
                   "for details, and report it)")


def on_database(url: str | None, secret_arn: str | None, fn: Callable[[Any], T]) -> T:
    """Call ``fn`` with the database's URL: ``--url``, else the secret's, else the local one.

    With a secret, refused credentials make it fetch the secret again once (rotation),
    as the Lambda does.
    """
    if url and secret_arn:
        raise click.UsageError("give --url or --secret-arn, not both")
    door_settings()  # a wrong setting is refused before any database is reached
    if secret_arn:
        from alquimista_schema.connect.secrets import SecretCache

        return SecretCache(secret_arn, env=os.environ).call(lambda creds: fn(creds.url))
    if url:
        return fn(url)
    from alquimista_schema.connect import local

    try:
        return fn(local.local_url(lambda line: say(line, err=True)))
    except UnknownDatabaseRevision as exc:
        raise exc.on_local_database() from exc


_url = click.option(
    "--url", envvar="DATABASE_URL", metavar="URL",
    help="postgresql:// URL of the database [env: DATABASE_URL]. Without it (or a secret), "
         "a local database managed by `dev-db` is started (or reused), unless "
         "ALQUIMISTA_DEVDB=off.")
_secret = click.option(
    "--secret-arn", metavar="ARN",
    help="Read the credentials from this Secrets Manager secret (RDS JSON), as the Lambda "
         "does; DB_HOST/DB_PORT/DB_NAME fill what it lacks, DB_SSLROOTCERT turns on "
         "verify-full.")


def url_option(fn: F) -> F:
    return _url(_secret(fn))


class BadSetting(Failure):
    """A setting in the environment PostgreSQL or the runner would refuse: one line,
    exit 2 (as a bad option), before anything is touched."""

    exit_code = 2


def door_settings() -> Settings:
    """The run settings this command reads from its environment (settings.local), read
    and validated once per command line, before any database is touched."""
    root = click.get_current_context().find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = settings.local(os.environ)
        except ConfigurationError as exc:
            raise BadSetting(str(exc)) from None
    read: Settings = root.obj["settings"]
    return read


def door_run(action: str, *, snapshot: bool | None = None, **options: Any) -> Run:
    """The run of ``action``: the settings, then this command's options (None: not
    given); ``snapshot`` is --snapshot/--no-snapshot, which wins over the setting."""
    read = door_settings()
    if snapshot is not None:
        read = replace(read, snapshot=snapshot)
    return Run.from_settings(read, action=action, **options)
