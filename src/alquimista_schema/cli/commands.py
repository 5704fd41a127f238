"""Command line: parses options and calls one library function per command.

Exit codes: 0 success, 1 an error the message explains, 2 a usage error (see
cli_common). Tool commands (lint, bundle, invoke, dev-db) are in cli_tools.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

import click

# The verbs and the grammar load nothing heavy (the cold-path contract): imported at once.
from alquimista_schema import __version__, command, durations, settings
from alquimista_schema.cli.common import (
    F,
    door_run,
    handle_errors,
    on_database,
    say,
    url_option,
)
from alquimista_schema.cli.tools import COMMANDS as TOOL_COMMANDS
from alquimista_schema.errors import SchemaError
from alquimista_schema.runtime.run import Applied, Result


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return durations.validate(param.name or "timeout", value)
    except SchemaError as exc:
        raise click.BadParameter(str(exc)) from None


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    found = settings.number_of_seconds(value)
    if found is None:
        raise click.BadParameter(f"must be a number of seconds, such as 60 or 2.5 (ASCII "
                                 f"digits), not {value[:40]!r}")
    return found


timeout_options = [
    click.option("--lock-timeout", metavar="DURATION", callback=_duration,
                 help="How long a statement may wait for a lock (default 5s) "
                      "[env: ALQUIMISTA_LOCK_TIMEOUT]."),
    click.option("--statement-timeout", metavar="DURATION", callback=_duration,
                 help="How long one statement may run (default 15min) "
                      "[env: ALQUIMISTA_STATEMENT_TIMEOUT]."),
    click.option("--lock-wait", callback=_seconds, default="60", show_default=True,
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


for _command in TOOL_COMMANDS:
    main.add_command(_command)


def _print_applied(item: Applied) -> None:
    say(item.line())


def _print_result(result: Result, verb: str, target: str | None = None) -> None:
    for warning in result.warnings:
        say(f"warning: {warning}", err=True)
    say(result.summary(verb, target))


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
@click.option("--accept-checksums", is_flag=True,
              help="Record the new checksums of applied revisions edited since they were "
                   "applied (an audited step; see `verify`).")
@click.option("--snapshot/--no-snapshot", default=None,
              help="Snapshot the Aurora cluster DB_CLUSTER_IDENTIFIER before applying anything "
                   "[default: SNAPSHOT_BEFORE_UPGRADE, else on in prod].")
@handle_errors
def upgrade(revision: str, url: str | None, secret_arn: str | None, lock_timeout: str | None,
            statement_timeout: str | None, lock_wait: float, accept_checksums: bool,
            snapshot: bool | None) -> None:
    """Upgrade the database to REVISION (default: head).

    REVISION may be a revision id (e.g. 017), head, or a relative step such as +1.
    Each revision runs in its own transaction; a failing one is rolled back and
    leaves the database at the revision before it. Revisions always run through
    Alembic, online, in one Alembic run. An applied revision edited since (see
    `verify`) is refused in prod and warned about elsewhere.
    """
    run = door_run("upgrade", snapshot=snapshot, lock_timeout=lock_timeout,
                   statement_timeout=statement_timeout, lock_wait=lock_wait)
    result = on_database(url, secret_arn, lambda db: command.upgrade(
        db, revision, on_applied=_print_applied, run=run, accept_checksums=accept_checksums))
    if result.snapshot:
        say(f"snapshot: {result.snapshot} (taken before the first revision)")
    restore = result.restore_line()
    if restore:  # beside the warnings: stdout stays the results
        say(restore, err=True)
    _print_result(result, "applied", revision)


_confirm = click.option(
    "--confirm", metavar="REV",
    help="Repeat the target revision: needed when ENVIRONMENT is prod, and wherever the "
         "downgrade drops tables that hold rows.")


@main.command(cls=RelativeStepCommand)
@click.argument("revision", required=False)
@url_option
@with_timeouts
@_confirm
@handle_errors
def downgrade(revision: str | None, url: str | None, secret_arn: str | None,
              lock_timeout: str | None, statement_timeout: str | None, lock_wait: float,
              confirm: str | None) -> None:
    """Revert the database to REVISION (an id, base, or a relative step such as -1).

    A downgrade drops what later revisions added, data included: in prod, and
    wherever it would drop a table that holds rows, it needs --confirm REVISION.
    """
    if revision is None:
        raise click.UsageError("downgrade needs a REVISION to go back to: a revision id "
                               "(e.g. 017), base, or a relative step such as -1")

    run = door_run("downgrade", lock_timeout=lock_timeout,
                   statement_timeout=statement_timeout, lock_wait=lock_wait)
    result = on_database(url, secret_arn, lambda db: command.downgrade(
        db, revision, on_applied=_print_applied, run=run, confirm=confirm))
    _print_result(result, "reverted")


@main.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def current(url: str | None, secret_arn: str | None, as_json: bool) -> None:
    """Show the database's current revision."""
    rev = on_database(url, secret_arn, command.current)
    head = command.heads()
    if as_json:
        say(json.dumps({"revision": rev, "head": head[0] if head else None,
                        "is_head": rev in head}))
    else:
        say(f"{rev or 'base (no revision applied)'}{' (head)' if rev in head else ''}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def history(as_json: bool) -> None:
    """List the revisions this release carries, oldest first."""
    items = command.history()
    if as_json:
        say(json.dumps([asdict(i) for i in items], indent=2))
        return
    for item in items:
        head = " (head)" if item.is_head else ""
        say(f"{item.down_revision or '<base>'} -> {item.revision}{head}, {item.description}")


@main.command()
@handle_errors
def heads() -> None:
    """Show the head revision(s) of this release."""
    for head in command.heads():
        say(head)


@main.command()
@url_option
@handle_errors
def check(url: str | None, secret_arn: str | None) -> None:
    """Compare the models with a database at head; exit 1 and list any difference."""
    on_database(url, secret_arn, command.check)
    say("no differences: the models match the revisions")


@main.command()
@url_option
@handle_errors
def verify(url: str | None, secret_arn: str | None) -> None:
    """Check that no applied revision was edited since it was applied (checksums).

    Exit 1 naming each revision whose file differs from the checksum recorded when it
    was applied, and each applied revision these files do not carry. Revisions applied
    before checksums were kept say so, and pass.
    """
    found = on_database(url, secret_arn, lambda db: command.verify(db))
    for check in found.checks:
        say(check.describe())
    say(f"verified {len(found.checks)} applied revision(s): none edited since applied")


@main.command()
@click.argument("revision", default="head")
@url_option
@click.option("--sql", "show_sql", is_flag=True, help="Also print the SQL (offline, for review).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def plan(revision: str, url: str | None, secret_arn: str | None, show_sql: bool,
         as_json: bool) -> None:
    """Show what an upgrade to REVISION (default: head) would do; change nothing.

    Each pending revision, then each of its statements graded against the live table:
    the lock it takes, whether it rewrites or scans the table or touches only the
    catalog, and the table's size now (DANGER: it blocks writes while it reads or
    rewrites a large table).
    """
    found = on_database(url, secret_arn, lambda db: command.plan(db, revision))
    if as_json:
        say(json.dumps({"from_revision": found.from_revision, "to_revision": found.to_revision,
                        "pending": [asdict(p) for p in found.pending],
                        "effects": [e.as_dict() for e in found.effects],
                        "lint": [asdict(f) for f in found.findings]}, indent=2))
        return
    if not found.pending:
        say(f"nothing to do: the database is already at {found.to_revision or 'base'}")
        return
    say(f"{len(found.pending)} pending revision(s): {found.from_revision or 'base'} -> "
        f"{found.to_revision}")
    for item in found.pending:
        say(f"{item.revision}: {item.description}")
        for effect in (e for e in found.effects if e.revision == item.revision):
            say(effect.line())
    for finding in found.findings:
        say(f"lint: {finding.revision}:{finding.line} {finding.rule}", err=True)
    if show_sql:
        say(found.sql, nl=False)


@main.command(name="sql")
@click.argument("revision_range", metavar="FROM:TO")
@handle_errors
def sql_command(revision_range: str) -> None:
    """Print the SQL that moves the schema FROM:TO (or base to TO), offline.

    Moving backwards (e.g. head:017) prints the downgrade SQL.
    """
    start, colon, end = revision_range.rpartition(":")
    if not end or (colon and not start and revision_range.count(":") > 1):
        raise click.BadParameter("expected FROM:TO or TO, e.g. 017:head", param_hint="FROM:TO")
    say(command.sql(revision_range), nl=False)


@main.command()
@click.argument("revision")
@url_option
@click.option("--purge", is_flag=True,
              help="Replace whatever the version table holds, even an unknown revision.")
@_confirm
@handle_errors
def stamp(revision: str, url: str | None, secret_arn: str | None, purge: bool,
          confirm: str | None) -> None:
    """Record REVISION as applied without running any migration.

    With --purge in prod, repeat the revision as --confirm REVISION.
    """
    run = door_run("stamp")
    result = on_database(url, secret_arn, lambda db: command.stamp(
        db, revision, purge=purge, run=run, confirm=confirm))
    say(f"stamped {result.to_revision or 'base'} (was {result.from_revision or 'base'})")


@main.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--autogenerate", is_flag=True,
              help="Fill the revision from the difference between the models and a database "
                   "at head.")
@click.option("--rev-id", help="Revision id (default: one above the newest numbered revision, "
                               "e.g. 022 after 021).")
@url_option
@handle_errors
def revision(message: str, autogenerate: bool, rev_id: str | None, url: str | None,
             secret_arn: str | None) -> None:
    """Write a new revision file into the package's versions folder."""
    def write(db: Any) -> command.Written:
        return command.revision(message, url=db, autogenerate=autogenerate, rev_id=rev_id)

    written = on_database(url, secret_arn, write) if autogenerate else write(url)
    if not written.revisions:
        say("no changes between the models and the database: nothing written")
    for path in written.revisions:
        say(f"wrote {path}")
    if written.lint is not None:
        say(f"linted it into {written.lint} (commit both)")
    for f in written.findings:
        state = f"waived: {f.reason}" if f.waived else \
            "NOT WAIVED: fix it, or waive it in the revision's SQUAWK_WAIVERS with a reason"
        say(f"lint: {f.revision}:{f.line} {f.rule} ({state})", err=True)


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
    result = on_database(url, secret_arn, lambda db: command.adopt(db, dry_run=dry_run))
    say(result.message)


