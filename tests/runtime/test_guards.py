"""The refusals made before anything changes: the prod confirmation, at every door, and the
replica guard, against a real streaming standby built with pg_basebackup -R."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.connect.local import DevDatabase
from alquimista_schema.connect.pgbin import server_account
from alquimista_schema.errors import DowngradeRefused, LintRefused, NotAdopted, ReadOnlyReplica
from alquimista_schema.runtime import guards
from tests.support.doors import Door
from tests.support.helpers import Invoke, alembic, full
from tests.support.revisions import EXTRA, HEAD, scratch_revision


@pytest.fixture(scope="module")
def standby(pg_cluster: DevDatabase, pg_server: URL) -> Iterator[URL]:
    """Start a hot standby of the test server; yield its URL (same credentials)."""
    bindir = Path(str(pg_cluster.status().bindir))
    root = Path(tempfile.mkdtemp(prefix="alq-standby-"))
    root.chmod(0o755)
    data = root / "data"
    account = server_account()
    user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} \
        if account else {}
    if account:
        os.chown(root, account.pw_uid, account.pw_gid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": pg_server.password or "", "LC_ALL": "C"}
    subprocess.run([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pg_server.port),
                    "-U", str(pg_server.username), "-D", str(data), "-R", "-X", "stream"],
                   env=env, cwd=root, check=True, capture_output=True, **user)  # type: ignore[call-overload]
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{root}'"
    subprocess.run([str(bindir / "pg_ctl"), "start", "-D", str(data), "-l",
                    str(root / "log"), "-w", "-o", options], env=env, cwd=root, check=True,
                   capture_output=True, **user)  # type: ignore[call-overload]
    try:
        yield pg_server.set(port=port)
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"],
                       env=env, cwd=root, capture_output=True, check=False, **user)  # type: ignore[call-overload]
        shutil.rmtree(root, ignore_errors=True)


REPLICA = ("connected to a read-only replica (pg_is_in_recovery() is true): point the URL "
           "or the secret's host at the cluster's writer endpoint")


@pytest.mark.slow
def test_upgrade_on_a_standby_is_refused(standby: URL, pg_server: URL) -> None:
    with connect(pg_server) as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS replica_probe (x int)"))
        conn.commit()
    for _ in range(50):  # the standby replays the primary's change
        with connect(standby) as conn:
            if conn.execute(text("SELECT to_regclass('replica_probe')")).scalar():
                break
        time.sleep(0.1)
    with connect(standby) as conn:
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
    with pytest.raises(ReadOnlyReplica) as caught:
        command.upgrade(standby, "head")
    assert str(caught.value) == REPLICA
    result = CliRunner().invoke(main, ["upgrade", "--url", standby.render_as_string(
        hide_password=False)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {REPLICA}\n"
    plain = alembic("upgrade", "head", url=standby)
    assert (plain.returncode, plain.stdout.strip().splitlines()[-1]) == (255, f"FAILED: {REPLICA}")
    with connect(pg_server) as conn:
        conn.execute(text("DROP TABLE replica_probe"))
        conn.commit()


@pytest.mark.slow
def test_the_lambda_answers_read_only_replica(standby: URL, invoke: Invoke,
                                              make_secret: Callable[..., str]) -> None:
    arn = make_secret({"username": standby.username, "password": standby.password,
                       "host": "localhost", "port": standby.port, "dbname": "postgres"})
    answer = invoke({}, secret=arn)
    assert (answer["error_code"], answer["error"]) == ("READ_ONLY_REPLICA", REPLICA)


# --- prod: a destructive verb needs its target repeated, nothing else will do -----------

# Confirmations that are not the target: a guard taking any non-empty ``confirm`` (or one
# merely resembling the target) lets each of them through.
WRONG_CONFIRMATIONS = ["yes", "true", HEAD, "020 ", " 020", "020\n", "20", "-1", "head"]

PROD_GUARD = [
    # environment, what, target, confirm, refused
    *[("prod", "downgrade", "020", wrong, True) for wrong in WRONG_CONFIRMATIONS],
    ("prod", "downgrade", "020", None, True),
    ("prod", "downgrade", "020", "", True),
    ("prod", "downgrade", "-1", "1", True),
    ("prod", "downgrade", "-1", "020", True),  # the revision -1 lands on is not the target
    ("prod", "stamp --purge", "017", "yes", True),
    ("prod", "stamp --purge", "017", "018", True),
    ("prod", "stamp --purge", "017", None, True),
    ("prod", "downgrade", "020", "020", False),
    ("prod", "downgrade", "-1", "-1", False),
    ("prod", "stamp --purge", "017", "017", False),
    ("prod", None, "head", None, False),  # not destructive: nothing to confirm
    ("staging", "downgrade", "020", None, False),
    ("dev", "stamp --purge", "017", "yes", False),
]


@pytest.mark.parametrize(("environment", "what", "target", "confirm", "refused"), PROD_GUARD)
def test_prod_refuses_every_confirmation_but_the_target(
        environment: str, what: str | None, target: str, confirm: str | None,
        refused: bool) -> None:
    """In prod only the target itself, repeated exactly, confirms a destructive verb."""
    if not refused:
        guards.refuse_in_prod(environment, what, target, confirm)
        return
    with pytest.raises(DowngradeRefused) as caught:
        guards.refuse_in_prod(environment, what, target, confirm)
    assert str(caught.value) == (
        f"{what} refused in prod: it can destroy data; nothing was changed. Repeat the "
        f"target as confirmation: {guards.confirmation(target)}")
    assert caught.value.code == "DOWNGRADE_REFUSED"


def test_the_confirmation_hint_names_each_doors_spelling() -> None:
    assert guards.confirmation("017") == (
        '--confirm 017 (CLI), -x confirm=017 (alembic) or "confirm": "017" (event)')


def versions(url: URL) -> list[str]:
    with connect(url) as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


@pytest.mark.slow
def test_prod_downgrade_takes_only_the_target_as_confirmation_at_every_door(
        door: Door, head_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's --confirm, plain alembic's -x confirm= and the event's "confirm"."""
    monkeypatch.setenv("ENVIRONMENT", "prod")  # each door's process inherits it
    for wrong in ("yes", HEAD):
        refused = door.run("downgrade", head_url, "020", confirm=wrong)
        assert not refused.ok, refused.output
        assert "downgrade refused in prod" in refused.output + str(refused.answer)
        assert versions(head_url) == [HEAD]
    if door.name == "lambda":
        assert refused.answer["error_code"] == "DOWNGRADE_REFUSED"
    done = door.run("downgrade", head_url, "020", confirm="020")
    assert done.ok, done.output
    assert versions(head_url) == ["020"]


def cli_stamp(url: URL, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["stamp", "017", "--purge", "--url", full(url), *extra],
                                env={"ENVIRONMENT": "prod"})
    return result.exit_code, result.output


def alembic_stamp(url: URL, *extra: str) -> tuple[int, str]:
    done = alembic(*extra, "stamp", "--purge", "017", url=url, ENVIRONMENT="prod")
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("stamp", "spell"), [
    (cli_stamp, lambda rev: ("--confirm", rev)),
    (alembic_stamp, lambda rev: ("-x", f"confirm={rev}")),
], ids=["cli", "alembic"])
def test_prod_stamp_purge_takes_only_the_target_as_confirmation(
        head_url: URL, stamp: Callable[..., tuple[int, str]],
        spell: Callable[[str], tuple[str, ...]]) -> None:
    """The doors that stamp (the Lambda has no stamp action)."""
    for wrong in ("yes", HEAD):
        code, output = stamp(head_url, *spell(wrong))
        assert code != 0, output
        assert "stamp --purge refused in prod" in output
        assert versions(head_url) == [HEAD]
    code, output = stamp(head_url, *spell("017"))
    assert code == 0, output
    assert versions(head_url) == ["017"]


def test_rows_a_downgrade_would_drop_need_the_target_itself(head_url: URL) -> None:
    """The other confirmation (any environment): tables holding rows."""
    with connect(head_url) as conn:
        conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
                          "VALUES (gen_random_uuid(), 'whatsapp', 'keep me')"))
        conn.commit()
    for wrong in ("yes", "lead_ingestion", "base "):
        with pytest.raises(DowngradeRefused, match="would drop what holds data: "
                                                    "table dry_run_log \\(1 row\\);"):
            command.downgrade(head_url, "base", confirm=wrong)
        assert versions(head_url) == [HEAD]
    assert command.downgrade(head_url, "base", confirm="base").to_revision is None


def test_two_tables_holding_rows_are_both_named(head_url: URL) -> None:
    with connect(head_url) as conn:
        conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
                          "VALUES (gen_random_uuid(), 'whatsapp', 'keep me')"))
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('x:1', 'x.xlsx', 'Leads')"))
        conn.commit()
    with pytest.raises(DowngradeRefused) as caught:
        command.downgrade(head_url, "base")
    assert str(caught.value) == (
        "downgrade to base would drop what holds data: table dry_run_log (1 row), table leads "
        "(1 row); nothing was changed. To drop them, repeat the target as confirmation: "
        f"{guards.confirmation('base')}")


def quoted(name: str, schema: str = "") -> str:
    """EXTRA (after the head): a table ``name`` (it may need quoting); the downgrade drops it."""
    where = f", schema={schema!r}" if schema else ""
    return scratch_revision(
        EXTRA, HEAD, f'op.create_table({name!r}, sa.Column("id", sa.Integer, primary_key=True))',
        f"op.drop_table({name!r}{where})", "A table whose name needs quoting.",
        imports=("sqlalchemy as sa",))


def dropped_tables(script: Any, start: str, dest: str) -> list[str]:
    return [item.name for item in guards.dropped(script, start, dest) if item.column is None]


def test_dropped_tables_are_read_from_the_downgrades_own_sql(scratch_scripts: Path) -> None:
    from alquimista_schema.script import directory

    (scratch_scripts / f"{EXTRA}_quoted.py").write_text(quoted("XRays"))
    script = directory.script_directory()
    assert dropped_tables(script, EXTRA, HEAD) == ["XRays"]  # only the quotes go
    assert dropped_tables(script, "021", "017") == []  # 018..021 drop no table
    assert dropped_tables(script, "017", "lead_ingestion") == ["dry_run_log"]
    assert dropped_tables(script, "017", "base") == [
        "dry_run_log", "lead_emails", "lead_telefones", "leads"]
    (scratch_scripts / f"{EXTRA}_quoted.py").write_text(quoted("plain_rows", schema="public"))
    assert dropped_tables(directory.script_directory(), EXTRA, HEAD) == [
        "public.plain_rows"]


@pytest.mark.parametrize("name", ["MixedCase", "Quoted Rows", 'say "hi"', "a.b"])
def test_a_quoted_table_holding_rows_needs_the_confirmation_too(
        head_url: URL, scratch_scripts: Path, name: str) -> None:
    (scratch_scripts / f"{EXTRA}_quoted.py").write_text(quoted(name))
    command.upgrade(head_url, EXTRA)
    with connect(head_url) as conn:
        spelt = name.replace('"', '""')
        conn.execute(text(f'INSERT INTO "{spelt}" VALUES (1)'))
        conn.commit()
    try:
        with pytest.raises(DowngradeRefused,
                           match=f"holds data: table {re.escape(name)} \\(1 row\\); nothing"):
            command.downgrade(head_url, HEAD)
    finally:
        assert versions(head_url) == [EXTRA], "the table and its rows were dropped"


LEGACY_OBJECTS = ("dry_run_log, lead_emails, lead_telefones, leads")
NOT_ADOPTED = (
    "the database holds the package's objects ({}) but no alembic_version: it was built by "
    "the legacy files or by hand. Run `alquimista-schema adopt` (the Lambda: "
    '{{"action": "adopt"}}) to verify it and record its revision, then upgrade. Nothing was '
    "changed")


@pytest.mark.parametrize(("drop", "shown"), [
    ([], f"{LEGACY_OBJECTS}, ..."),  # more than four: the first four, then ...
    (["DROP VIEW v_leads_com_contatos", "DROP VIEW v_stats_ingestao"], f"{LEGACY_OBJECTS}, ..."),
    (["DROP VIEW v_leads_com_contatos", "DROP VIEW v_stats_ingestao",
      "DROP FUNCTION get_leads_para_disparo(integer, varchar)"], LEGACY_OBJECTS),  # four
], ids=["all", "five", "four"])
def test_an_unadopted_database_is_refused_naming_what_it_holds(
        legacy_url: URL, drop: list[str], shown: str) -> None:
    with connect(legacy_url) as conn:
        for statement in drop:
            conn.execute(text(statement))
        conn.commit()
    with pytest.raises(NotAdopted) as caught:
        command.upgrade(legacy_url, "head")
    assert str(caught.value) == NOT_ADOPTED.format(shown)


LINT = {
    "018": [{"line": 3, "message": "m", "reason": None, "rule": "b-rule", "waived": False},
            {"line": 4, "message": "m", "reason": "ok", "rule": "c-rule", "waived": True},
            {"line": 5, "message": "m", "reason": None, "rule": "a-rule", "waived": False},
            {"line": 6, "message": "m", "reason": None, "rule": "b-rule", "waived": False}],
    "019": [{"line": 1, "message": "m", "reason": "ok", "rule": "a-rule", "waived": True}],
    "020": [],
}


@pytest.mark.parametrize(("revisions", "policy", "refusal"), [
    (["019", "020"], "enforce", None),  # waived or clean
    (["018"], "warn", None), (["018"], "off", None), (["021"], "warn", None),
    (["019", "018"], "enforce", "revision 018 has 3 unwaived squawk finding(s) (a-rule, "
                                "b-rule): fix them or waive each in the revision's "
                                "SQUAWK_WAIVERS with a reason; refused under the enforce "
                                "policy"),
    (["020", "021"], "enforce", "revision 021 has no lint result in migrations/lint.json "
                                "(stale): run `alquimista-schema lint --write` and commit it; "
                                "refused under the enforce policy"),
])
def test_the_enforce_policy_refuses_the_first_revision_not_lint_clean(
        scratch_scripts: Path, revisions: list[str], policy: str,
        refusal: str | None) -> None:
    (scratch_scripts.parent / "lint.json").write_text(json.dumps(LINT))
    scripts: Any = [SimpleNamespace(revision=r) for r in revisions]
    if refusal is None:
        guards.refuse_unlinted(scripts, policy)
        return
    with pytest.raises(LintRefused) as caught:
        guards.refuse_unlinted(scripts, policy)
    assert str(caught.value) == refusal
    # warn says, as a warning line, exactly what enforce refuses, and raises nothing
    warned = guards.refuse_unlinted(scripts, "warn")
    head = refusal.removesuffix("; refused under the enforce policy")
    assert f"lint: {head} (LINT_POLICY=warn here; prod enforces it)" in warned


def column_after(rev: str = "zz_column", down: str = "c13") -> str:
    """A column added to dry_run_log, dropped by the downgrade (by default after the
    corpus's head)."""
    return scratch_revision(
        rev, down,
        'op.add_column("dry_run_log", sa.Column("canal_origem", sa.Text(), nullable=True))',
        'op.drop_column("dry_run_log", "canal_origem")', "A column a downgrade drops.",
        imports=("sqlalchemy as sa",))


def _log_rows(url: URL, *values: str | None) -> None:
    with connect(url) as conn:
        for value in values:
            conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, "
                              "motivo_decisao, canal_origem) VALUES (gen_random_uuid(), "
                              "'email', 'x', :v)"), {"v": value})
        conn.commit()


@pytest.mark.slow
def test_a_downgrade_dropping_a_column_with_data_needs_the_confirmation_at_every_door(
        door: Door, empty_url: URL) -> None:
    """Outside prod too: the data of a dropped column is gone as surely as a table's."""
    (door.folder / "versions" / "zz_column.py").write_text(column_after())
    assert door.run("upgrade", empty_url, "head").ok
    _log_rows(empty_url, "planilha", None, "api")
    refused = door.run("downgrade", empty_url, "c13")
    assert not refused.ok, refused.output
    said = refused.output + str(refused.answer)
    assert ("downgrade to c13 would drop what holds data: column "
            "dry_run_log.canal_origem (2 rows with a value); nothing was changed") in said
    assert versions(empty_url) == ["zz_column"]
    done = door.run("downgrade", empty_url, "c13", confirm="c13")
    assert done.ok, done.output
    assert versions(empty_url) == ["c13"]


def test_a_dropped_column_without_values_needs_no_confirmation(
        head_url: URL, scratch_scripts: Path) -> None:
    (scratch_scripts / f"{EXTRA}_column.py").write_text(
        column_after(EXTRA, HEAD))
    command.upgrade(head_url, EXTRA)
    _log_rows(head_url, None, None)  # rows, but no value in the column
    assert command.downgrade(head_url, HEAD).to_revision == HEAD


def test_dropped_columns_are_read_from_the_downgrades_own_sql(scratch_scripts: Path) -> None:
    from alquimista_schema.script import directory

    (scratch_scripts / f"{EXTRA}_column.py").write_text(
        column_after(EXTRA, HEAD))
    [item] = guards.dropped(directory.script_directory(), EXTRA, HEAD)
    assert (item.name, item.column) == ("dry_run_log", "canal_origem")
    assert item.describe(1) == "column dry_run_log.canal_origem (1 row with a value)"
    assert item.describe(guards.COUNT_LIMIT + 1) == (
        "column dry_run_log.canal_origem (over 1,000,000 rows with a value)")
