"""Command line: parses options and calls one library function per command.

Exit codes: 0 success, 1 an error the message explains, 2 a usage error.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.engine import URL

from alquimista_schema import __version__
from alquimista_schema.errors import DriftDetected, MissingURL, SchemaError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def handle_errors(fn: F) -> F:
    """Print one clear line and exit 1 on a known error (a traceback with --traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        traceback = bool(ctx.find_root().obj and ctx.find_root().obj.get("traceback"))
        try:
            return fn(*args, **kwargs)
        except DriftDetected as exc:
            if traceback:
                raise
            click.echo(f"error: {exc}:", err=True)
            for line in exc.differences:
                click.echo(f"  - {line}", err=True)
            sys.exit(1)
        except (click.ClickException, click.Abort):
            raise  # click prints these and picks the exit code (2 for usage errors)
        except SchemaError as exc:
            if traceback:
                raise
            _fail(str(exc))
        except Exception as exc:  # an unexpected error is a bug: say so, briefly
            if traceback:
                raise
            _fail(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                  " (run with --traceback for details)")

    return wrapper  # type: ignore[return-value]


def resolve_url(url: str | None, secret_arn: str | None = None) -> str | URL:
    """Return the URL: ``--url``, else the secret's, else the local database's."""
    if url and secret_arn:
        raise click.UsageError("give --url or --secret-arn, not both")
    if url:
        return url
    if secret_arn:
        from alquimista_schema.credentials import SecretCache

        return SecretCache(secret_arn).get().url
    if os.environ.get("ALQUIMISTA_DEVDB", "").lower() in ("0", "off", "no", "false"):
        raise MissingURL("no database URL: pass --url or set DATABASE_URL "
                         "(the local database is switched off by ALQUIMISTA_DEVDB)")
    from alquimista_schema.devdb import DevDatabase

    db = DevDatabase.default()
    dev_url = db.start()
    click.echo(f"using the local database {dev_url.render_as_string(hide_password=True)} "
               "(see `alquimista-schema dev-db`)", err=True)
    return dev_url


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
def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from alquimista_schema.environment import validate_timeout

    try:
        return validate_timeout(param.name or "timeout", value)
    except SchemaError as exc:
        raise click.BadParameter(str(exc)) from None


def _python_version(value: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", value):
        raise click.BadParameter(f"must look like 3.12, not {value!r}")
    return value


timeout_options = [
    click.option("--lock-timeout", metavar="DURATION", callback=_duration,
                 help="How long a statement may wait for a lock (default 5s) "
                      "[env: ALQUIMISTA_LOCK_TIMEOUT]."),
    click.option("--statement-timeout", metavar="DURATION", callback=_duration,
                 help="How long one statement may run (default 15min) "
                      "[env: ALQUIMISTA_STATEMENT_TIMEOUT]."),
    click.option("--lock-wait", type=click.FloatRange(min=0), default=60.0, show_default=True,
                 metavar="SECONDS",
                 help="How long to wait for another run's migration lock."),
]


def with_timeouts(fn: F) -> F:
    for option in reversed(timeout_options):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(__version__, prog_name="alquimista-schema")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Migrate the dispatch agent's PostgreSQL schema (Alembic underneath).

    Revisions travel with the package; run any command from any directory.
    """
    ctx.obj = {"traceback": traceback}


def _print_applied(item: Any) -> None:
    click.echo(f"  {item.revision:<16} {item.duration_ms:>9.1f} ms  {item.description}")


def _print_result(result: Any, verb: str, target: str | None = None) -> None:
    if not result.applied:
        at = result.to_revision or "base"
        if verb == "applied" and target not in (None, "head", "heads", at) and \
                not target.startswith(("+", "-")):
            click.echo(f"nothing to do: the database is at {at}, already past {target} "
                       "(use downgrade to go back)")
        else:
            click.echo(f"nothing to do: the database is already at {at}")
    else:
        click.echo(f"{verb} {len(result.applied)} revision(s): "
                   f"{result.from_revision or 'base'} -> {result.to_revision or 'base'}")


class RelativeStepCommand(click.Command):
    """Read `-1` as a relative revision (downgrade -1), not as an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        steps = [a for a in args if re.fullmatch(r"-\d+", a)]
        rest = [a for a in args if a not in steps]
        return super().parse_args(ctx, [*rest, "--", *steps] if steps else rest)


@main.command(cls=RelativeStepCommand)
@click.argument("revision", default="head")
@url_option
@with_timeouts
@handle_errors
def upgrade(revision: str, url: str | None, secret_arn: str | None, lock_timeout: str | None,
            statement_timeout: str | None, lock_wait: float) -> None:
    """Upgrade the database to REVISION (default: head).

    REVISION may be a revision id (e.g. 017), head, or a relative step such as +1.
    Each revision runs in its own transaction; a failing one is rolled back and
    leaves the database at the revision before it.
    """
    from alquimista_schema import migrate

    run = migrate.Run(action="upgrade", lock_timeout=lock_timeout,
                      statement_timeout=statement_timeout, lock_wait=lock_wait)
    result = migrate.upgrade(resolve_url(url, secret_arn), revision,
                             on_applied=_print_applied, run=run)
    _print_result(result, "applied", revision)


@main.command(cls=RelativeStepCommand)
@click.argument("revision")
@url_option
@with_timeouts
@handle_errors
def downgrade(revision: str, url: str | None, secret_arn: str | None, lock_timeout: str | None,
              statement_timeout: str | None, lock_wait: float) -> None:
    """Revert the database to REVISION (an id, base, or a relative step such as -1)."""
    from alquimista_schema import migrate

    run = migrate.Run(action="downgrade", lock_timeout=lock_timeout,
                      statement_timeout=statement_timeout, lock_wait=lock_wait)
    result = migrate.downgrade(resolve_url(url, secret_arn), revision,
                               on_applied=_print_applied, run=run)
    _print_result(result, "reverted")


@main.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def current(url: str | None, secret_arn: str | None, as_json: bool) -> None:
    """Show the database's current revision."""
    from alquimista_schema import migrate

    rev = migrate.current(resolve_url(url, secret_arn))
    head = migrate.heads()
    if as_json:
        click.echo(json.dumps({"revision": rev, "head": head[0] if head else None,
                               "is_head": rev in head}))
    else:
        click.echo(f"{rev or 'base (no revision applied)'}{' (head)' if rev in head else ''}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def history(as_json: bool) -> None:
    """List the revisions this release carries, oldest first."""
    from alquimista_schema import migrate

    items = migrate.history()
    if as_json:
        click.echo(json.dumps([asdict(i) for i in items], indent=2))
        return
    for item in items:
        head = " (head)" if item.is_head else ""
        click.echo(f"{item.down_revision or '<base>'} -> {item.revision}{head}, "
                   f"{item.description}")


@main.command()
@handle_errors
def heads() -> None:
    """Show the head revision(s) of this release."""
    from alquimista_schema import migrate

    for head in migrate.heads():
        click.echo(head)


@main.command()
@url_option
@handle_errors
def check(url: str | None, secret_arn: str | None) -> None:
    """Compare the models with a database at head; exit 1 and list any difference."""
    from alquimista_schema import migrate

    migrate.check(resolve_url(url, secret_arn))
    click.echo("no differences: the models match the revisions")


@main.command(name="sql")
@click.argument("revision_range", metavar="FROM:TO")
@handle_errors
def sql_command(revision_range: str) -> None:
    """Print the SQL that moves the schema FROM:TO (or base to TO), offline.

    Moving backwards (e.g. head:017) prints the downgrade SQL.
    """
    from alquimista_schema import migrate

    start, colon, end = revision_range.rpartition(":")
    if not end or (colon and not start and revision_range.count(":") > 1):
        raise click.BadParameter("expected FROM:TO or TO, e.g. 017:head", param_hint="FROM:TO")
    click.echo(migrate.sql(revision_range), nl=False)


@main.command()
@click.argument("revision")
@url_option
@click.option("--purge", is_flag=True,
              help="Replace whatever the version table holds, even an unknown revision.")
@handle_errors
def stamp(revision: str, url: str | None, secret_arn: str | None, purge: bool) -> None:
    """Record REVISION as applied without running any migration."""
    from alquimista_schema import migrate

    result = migrate.stamp(resolve_url(url, secret_arn), revision, purge=purge)
    click.echo(f"stamped {result.to_revision or 'base'} (was {result.from_revision or 'base'})")


@main.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--autogenerate", is_flag=True,
              help="Fill the revision from the difference between the models and a database "
                   "at head.")
@click.option("--rev-id", help="Revision id (default: the next number, e.g. 020).")
@url_option
@handle_errors
def revision(message: str, autogenerate: bool, rev_id: str | None, url: str | None,
             secret_arn: str | None) -> None:
    """Write a new revision file into the package's versions folder."""
    from alquimista_schema import migrate

    paths = migrate.revision(message, url=resolve_url(url, secret_arn) if autogenerate else url,
                             autogenerate=autogenerate, rev_id=rev_id)
    if not paths:
        click.echo("no changes between the models and the database: nothing written")
    for path in paths:
        click.echo(f"wrote {path}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Report what would be stamped; change nothing.")
@url_option
@handle_errors
def adopt(dry_run: bool, url: str | None, secret_arn: str | None) -> None:
    """Adopt a database the legacy SQL files built: verify it exactly, then stamp.

    Finds the newest revision whose schema the live objects match exactly (columns,
    types, nullability, defaults, indexes, constraints, views, functions, triggers)
    and stamps it; on any difference changes nothing, lists each one, and exits 1.
    """
    from alquimista_schema.adopt import adopt as adopt_database

    result = adopt_database(resolve_url(url, secret_arn), dry_run=dry_run)
    click.echo(result.message)


@main.command(name="lint")
@click.option("--write", is_flag=True, help="Also write migrations/lint.json (commit it).")
@handle_errors
def lint_command(write: bool) -> None:
    """Lint every revision's SQL with squawk; exit 1 on an unwaived finding."""
    from alquimista_schema import lint

    results = lint.lint()
    for revision, findings in results.items():
        for f in findings:
            state = f"waived: {f.reason}" if f.waived else "NOT WAIVED"
            click.echo(f"{revision}:{f.line} {f.rule} ({state})")
    if write:
        lint.manifest_path().write_text(lint.to_manifest(results))
        click.echo(f"wrote {lint.manifest_path()}")
    bad = lint.unwaived(results)
    total = sum(len(v) for v in results.values())
    click.echo(f"{total} finding(s) in {len(results)} revision(s), {len(bad)} not waived")
    if bad:
        sys.exit(1)


@main.command(name="bundle")
@click.option("--python", "python_version", default="3.12", show_default=True,
              callback=lambda ctx, param, value: _python_version(value),
              help="Target Python of the Lambda runtime.")
@click.option("--arch", type=click.Choice(["x86_64", "arm64"]), default="x86_64",
              show_default=True, help="Target architecture of the function.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default="dist/runner.zip",
              show_default=True, help="Where to write the zip.")
@click.option("--include-boto3", is_flag=True,
              help="Also bundle boto3/botocore (the runtime provides them by default).")
@click.option("--project", type=click.Path(file_okay=False), default=None,
              help="The checkout to build from (default: this folder or a parent).")
@handle_errors
def bundle_command(python_version: str, arch: str, output: str, include_boto3: bool,
                   project: str | None) -> None:
    """Build the Lambda zip for the target platform, without Docker, from a checkout.

    Handler setting: lambda_entry.handler.handler. Same inputs give a
    byte-identical zip.
    """
    from pathlib import Path

    from alquimista_schema import bundle

    report = bundle.build(Path(output), python=python_version, arch=arch,
                          include_boto3=include_boto3,
                          project=Path(project) if project else None,
                          log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {report.output}: {report.zipped_bytes:,} bytes zipped, "
               f"{report.unzipped_bytes:,} unzipped, {report.files} files")
    click.echo(f"handler: {bundle.HANDLER}; runtime python{python_version} {arch}; "
               f"boto3 {'included' if report.include_boto3 else 'from the runtime'}")
    click.echo("bytecode: " + (f"precompiled with {report.interpreter}" if report.precompiled
                               else "not precompiled (no target interpreter here)"))
    click.echo(f"sha256: {report.sha256}")


@main.command(name="invoke")
@click.option("--function", "function_name", required=True, metavar="NAME",
              help="Name or ARN of the deployed runner.")
@click.option("--action", help="Event action (default: upgrade).")
@click.option("--target", help="Event target revision (e.g. 017, head).")
@click.option("--payload-file", type=click.File("r"), help="Send this JSON file as the event.")
@click.option("--log-tail", is_flag=True, help="Show the tail of the invocation's log.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw answer.")
@click.option("--region", help="AWS region (default: your AWS configuration).")
@handle_errors
def invoke_command(function_name: str, action: str | None, target: str | None,
                   payload_file: Any, log_tail: bool, as_json: bool, region: str | None) -> None:
    """Invoke the deployed runner and summarise its answer; exit 1 unless it succeeded."""
    from alquimista_schema import invoke as invoking

    if payload_file is not None and (action or target):
        raise click.UsageError("give --payload-file, or --action/--target, not both")
    if payload_file is not None:
        try:
            payload = json.load(payload_file)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload-file") from exc
    else:
        payload = {k: v for k, v in (("action", action), ("target", target)) if v}
    session = None
    if region:
        import boto3

        session = boto3.session.Session(region_name=region)
    result = invoking.invoke(function_name, payload, log_tail=log_tail,
                             client=invoking.lambda_client(session))
    if as_json:
        click.echo(json.dumps(result.answer, indent=2))
    else:
        for line in invoking.summary(function_name, result):
            click.echo(line)
    if log_tail and result.log_tail:
        click.echo("--- log tail ---", err=True)
        click.echo(result.log_tail.rstrip(), err=True)
    if not result.ok:
        sys.exit(1)


@main.group(name="dev-db", invoke_without_command=True)
@click.pass_context
def dev_db(ctx: click.Context) -> None:
    """Show, start, stop or remove the local development database.

    It lives in ALQUIMISTA_DEVDB_DIR (default: your cache folder; for root
    /var/lib/alquimista-schema/devdb) and listens on 127.0.0.1 only.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(status)


@dev_db.command()
@handle_errors
def status() -> None:
    """Show where the local database lives and whether it runs."""
    from alquimista_schema.devdb import DevDatabase

    st = DevDatabase.default().status()
    click.echo(f"folder:   {st.root}")
    state = "running" if st.running else "stopped" if st.initialized else "absent"
    click.echo(f"state:    {state}")
    if st.bindir:
        click.echo(f"binaries: {st.bindir}")
    if st.url is not None:
        click.echo(f"url:      {st.url.render_as_string(hide_password=True)}")


@dev_db.command()
@handle_errors
def start() -> None:
    """Start the local database (creating it on first use)."""
    from alquimista_schema.devdb import DevDatabase

    url = DevDatabase.default().start()
    click.echo(f"running: {url.render_as_string(hide_password=True)}")


@dev_db.command()
@handle_errors
def stop() -> None:
    """Stop the local database; its data stays."""
    from alquimista_schema.devdb import DevDatabase

    click.echo("stopped" if DevDatabase.default().stop() else "was not running")


@dev_db.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def remove(yes: bool) -> None:
    """Stop the local database and delete all its data."""
    from alquimista_schema.devdb import DevDatabase

    db = DevDatabase.default()
    if not yes:
        click.confirm(f"delete {db.root} and all its data?", abort=True)
    db.remove()
    click.echo(f"removed {db.root}")


@dev_db.command()
@click.option("--show-password", is_flag=True, help="Print the password instead of ***.")
@handle_errors
def url(show_password: bool) -> None:
    """Print the local database's URL (starting it if needed), e.g. for DATABASE_URL."""
    from alquimista_schema.devdb import DevDatabase

    click.echo(DevDatabase.default().start().render_as_string(hide_password=not show_password))
