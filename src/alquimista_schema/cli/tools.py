"""The CLI's tool commands: lint, bundle, invoke and the local database (dev-db)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from alquimista_schema.cli.common import Failure, handle_errors, say


def _python_version(value: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", value):
        raise click.BadParameter(f"must look like 3.12, not {value!r}")
    return value


@click.command(name="lint")
@click.option("--write", is_flag=True, help="Also write migrations/lint.json (commit it).")
@handle_errors
def lint_command(write: bool) -> None:
    """Lint every revision's SQL with squawk; exit 1 on an unwaived finding."""
    from alquimista_schema.script import lint

    results = lint.lint()
    for revision, findings in results.items():
        for f in findings:
            state = f"waived: {f.reason}" if f.waived else "NOT WAIVED"
            say(f"{revision}:{f.line} {f.rule} ({state})")
    if write:
        lint.manifest_path().write_text(lint.to_manifest(results))
        say(f"wrote {lint.manifest_path()}")
    bad = lint.unwaived(results)
    total = sum(len(v) for v in results.values())
    say(f"{total} finding(s) in {len(results)} revision(s), {len(bad)} not waived")
    if bad:
        raise Failure(f"{len(bad)} squawk finding(s) not waived: fix them, or waive each "
                      "in its revision's SQUAWK_WAIVERS with a reason")


@click.command(name="bundle")
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

    from alquimista_schema.tooling import bundle

    report = bundle.build(Path(output), python=python_version, arch=arch,
                          include_boto3=include_boto3,
                          project=Path(project) if project else None,
                          log=lambda line: say(line, err=True))
    say(f"wrote {report.output}: {report.zipped_bytes:,} bytes zipped, "
               f"{report.unzipped_bytes:,} unzipped, {report.files} files")
    say(f"handler: {bundle.HANDLER}; runtime python{python_version} {arch}; "
               f"boto3 {'included' if report.include_boto3 else 'from the runtime'}")
    say("bytecode: " + (f"precompiled with {report.interpreter}" if report.precompiled
                               else f"not precompiled (no python{python_version} here; "
                                    "a cold start compiles it)"))
    say(f"sha256: {report.sha256}")


@click.command(name="invoke")
@click.option("--function", "function_name", required=True, metavar="NAME",
              help="Name or ARN of the deployed runner.")
@click.option("--action", help="Event action (default: upgrade).")
@click.option("--target", help="Event target revision (e.g. 017, head).")
@click.option("--allow-downgrade", is_flag=True,
              help='With --action downgrade: add "allow_downgrade": true to the event.')
@click.option("--confirm", metavar="REV",
              help="The target repeated: what a downgrade that drops data (or any in prod) "
                   "needs.")
@click.option("--payload-file", type=click.File("r"), help="Send this JSON file as the event.")
@click.option("--log-tail", is_flag=True, help="Show the tail of the invocation's log.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw answer.")
@click.option("--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, "
                               "else your AWS profile's).")
@handle_errors
def invoke_command(function_name: str, action: str | None, target: str | None,
                   allow_downgrade: bool, confirm: str | None, payload_file: Any,
                   log_tail: bool, as_json: bool, region: str | None) -> None:
    """Invoke the deployed runner and summarise its answer; exit 1 unless it succeeded.

    \b
    The Invoke is sent once and never retried: if its answer is lost (no
    answer within the function's timeout plus 30 s, or a broken connection),
    the migration may have run, so the error says so and nothing is sent
    again; read the function's log (or invoke with --action current) before
    invoking again. The function's timeout is read first
    (lambda:GetFunctionConfiguration; without that permission, Lambda's
    maximum, 900 s, is waited for).
    """
    from alquimista_schema.tooling import invoke as invoking

    if payload_file is not None and (action or target or allow_downgrade or confirm):
        raise click.UsageError("give --payload-file, or --action/--target/--allow-downgrade/"
                               "--confirm, not both")
    if payload_file is not None:
        try:
            payload = json.load(payload_file)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload-file") from exc
    else:
        payload = {k: v for k, v in (("action", action), ("target", target),
                                     ("allow_downgrade", allow_downgrade),
                                     ("confirm", confirm)) if v}
    result = invoking.invoke(function_name, payload, log_tail=log_tail,
                             session_=invoking.session(region),
                             log=lambda line: say(line, err=True))
    if as_json:
        say(json.dumps(result.answer, indent=2))
    else:
        for line in invoking.summary(function_name, result):
            say(line)
    if log_tail and result.log_tail:
        say("--- log tail ---", err=True)
        say(result.log_tail.rstrip(), err=True)
    if not result.ok:
        raise Failure(f"the runner answered {result.answer.get('status', 'nothing')!r}"
                      if isinstance(result.answer, dict) else "the runner did not answer")


@click.group(name="dev-db", invoke_without_command=True)
@click.pass_context
def dev_db(ctx: click.Context) -> None:
    """Show, start, stop or remove the local development database.

    One server per machine, in ALQUIMISTA_DEVDB_DIR (default: your cache folder; for
    root /var/lib/alquimista-schema/devdb), listening on 127.0.0.1 only; each checkout
    has its own database on it (ALQUIMISTA_DEVDB_NAME overrides the name).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(status)


@dev_db.command()
@handle_errors
def status() -> None:
    """Show where the local database lives and whether it runs."""
    from alquimista_schema.connect.local import DevDatabase

    st = DevDatabase.default().status()
    say(f"folder:   {st.root}")
    say(f"database: {DevDatabase.default().dbname} (this checkout's)")
    state = "running" if st.running else "stopped" if st.initialized else "absent"
    say(f"state:    {state}")
    if st.bindir:
        say(f"binaries: {st.bindir}")
    if st.url is not None:
        say(f"url:      {st.url.render_as_string(hide_password=True)}")


@dev_db.command()
@handle_errors
def start() -> None:
    """Start the local database (creating it on first use)."""
    from alquimista_schema.connect.local import DevDatabase

    url = DevDatabase.default().start()
    say(f"running: {url.render_as_string(hide_password=True)}")


@dev_db.command()
@handle_errors
def stop() -> None:
    """Stop the local database; its data stays."""
    from alquimista_schema.connect.local import DevDatabase

    say("stopped" if DevDatabase.default().stop() else "was not running")


@dev_db.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--all", "everything", is_flag=True,
              help="Remove the whole server: every checkout's database, and its folder.")
@handle_errors
def remove(yes: bool, everything: bool) -> None:
    """Drop this checkout's local database (the server and other checkouts' stay)."""
    from alquimista_schema.connect.local import DevDatabase

    db = DevDatabase.default()
    what = (f"{db.root} and every checkout's database in it" if everything
            else f"the database {db.dbname} and all its data")
    if not yes:
        if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
            raise click.UsageError(f"there is no terminal to ask: pass --yes to delete {what}")
        click.confirm(f"delete {what}?", abort=True)
    if everything:
        db.remove()
        say(f"removed {db.root}")
    else:
        say(f"dropped {db.dbname}" if db.drop_database()
            else f"there was no database {db.dbname}")


@dev_db.command()
@click.option("--show-password", is_flag=True, help="Print the password instead of ***.")
@handle_errors
def url(show_password: bool) -> None:
    """Print the local database's URL (starting it if needed), e.g. for DATABASE_URL."""
    from alquimista_schema.connect.local import DevDatabase

    say(DevDatabase.default().start().render_as_string(hide_password=not show_password))


COMMANDS = (lint_command, bundle_command, invoke_command, dev_db)
