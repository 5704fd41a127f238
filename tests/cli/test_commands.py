"""The command line as a user runs it: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from tests.support.helpers import alembic
from tests.support.revisions import (
    COUNT,
    EXTRA,
    EXTRA_COLUMN,
    HEAD,
    NEXT,
    PREVIOUS,
    REVISIONS,
    after,
)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def full(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _no_ambient_url(secret_free_env: None) -> None:
    """Tests start from a shell without DATABASE_URL."""


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_upgrade_prints_one_line_per_revision(empty_url: URL) -> None:
    result = run("upgrade", "--url", full(empty_url))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:COUNT]] == REVISIONS
    assert all(" ms " in line for line in lines[:COUNT])
    assert lines[COUNT] == f"applied {COUNT} revision(s): base -> {HEAD}"
    again = run("upgrade", "head", "--url", full(empty_url))
    assert again.stdout.strip() == f"nothing to do: the database is already at {HEAD}"


def test_database_url_from_the_environment(head_url: URL) -> None:
    result = run("current", env={"DATABASE_URL": full(head_url)})
    assert result.stdout.strip() == f"{HEAD} (head)"


def test_current_and_history_as_json(head_url: URL) -> None:
    current = json.loads(run("current", "--json", "--url", full(head_url)).stdout)
    assert current == {"revision": HEAD, "head": HEAD, "is_head": True}
    history = json.loads(run("history", "--json").stdout)
    assert [h["revision"] for h in history] == REVISIONS
    assert history[1] == {"revision": "017", "down_revision": "lead_ingestion",
                          "description": history[1]["description"], "is_head": False}


def test_heads_history_sql_need_no_database() -> None:
    assert run("heads").stdout == f"{HEAD}\n"
    assert f"{PREVIOUS} -> {HEAD} (head)" in run("history").stdout
    out = run("sql", "lead_ingestion:017").stdout
    assert "CREATE TABLE dry_run_log" in out
    assert "CREATE TABLE leads" not in out


def test_downgrade_and_stamp(head_url: URL) -> None:
    down = run("downgrade", "017", "--url", full(head_url))
    assert down.exit_code == 0
    assert down.stdout.strip().splitlines()[-1] == \
        f"reverted {len(after('017'))} revision(s): {HEAD} -> 017"
    stamped = run("stamp", "019", "--url", full(head_url))
    assert stamped.stdout.strip() == "stamped 019 (was 017)"


def test_check_passes_at_head_and_lists_drift(head_url: URL) -> None:
    assert run("check", "--url", full(head_url)).exit_code == 0
    with connect(head_url) as conn:
        conn.execute(text("ALTER TABLE dry_run_log ALTER COLUMN lead_nome TYPE varchar(600)"))
        conn.execute(text("DROP INDEX idx_dry_run_canal"))
        conn.commit()
    result = run("check", "--url", full(head_url))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: the database (at head {HEAD}) does not match the models: 2 difference(s), each "
        "what a new revision would change in the database (models changed without a "
        "revision, or the database changed by hand):",
        "  - change type of dry_run_log.lead_nome: VARCHAR(600) -> VARCHAR(500)",
        "  - add index idx_dry_run_canal on dry_run_log",
    ]


@pytest.mark.parametrize(("args", "expected"), [
    (["upgrade", "999"], "error: unknown revision '999'"),
    (["downgrade", "nope"], "error: unknown revision 'nope'"),
    (["sql", "017:zzz"], "error: unknown revision 'zzz'"),
    (["stamp", "abc"], "error: unknown revision 'abc'"),
])
def test_unknown_revisions(args: list[str], expected: str, head_url: URL) -> None:
    result = run(*args, "--url", full(head_url)) if args[0] != "sql" else run(*args)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith(expected + ". Known revisions: lead_ingestion, 017")
    assert "Can't locate" not in line  # said once, in our words


def test_unreachable_host_fails_fast_and_names_it() -> None:
    result = run("upgrade", "--url", "postgresql://u:s3cr3t-pw@127.0.0.1:1/db")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("error: cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)")
    assert "s3cr3t-pw" not in result.output


def test_failed_authentication_never_shows_the_password(head_url: URL) -> None:
    wrong = head_url.set(password="Wr0ng-P@ss:/%?")
    result = run("current", "--url", full(wrong))
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "refused the credentials of user 'postgres'" in line
    assert "Wr0ng" not in result.output


def test_database_at_an_unknown_revision(head_url: URL) -> None:
    with connect(head_url) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
        conn.commit()
    for command in ("current", "upgrade", "check"):
        result = run(command, "--url", full(head_url))
        assert result.exit_code == 1
        line = one_error_line(result)
        assert "at revision 'f00dcafe', which these revision files do not have" in line
        assert "a newer release, or from another branch" in line
    fixed = run("stamp", "019", "--purge", "--url", full(head_url))
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.strip() == "stamped 019 (was f00dcafe)"  # what it replaced, truly


def test_missing_url_when_the_local_database_is_off() -> None:
    result = run("upgrade", env={"ALQUIMISTA_DEVDB": "off"})
    assert result.exit_code == 1
    assert one_error_line(result).startswith("error: no database URL")


def test_bad_url_and_bad_timeout(head_url: URL) -> None:
    assert one_error_line(run("current", "--url", "mysql://x@y/z")).startswith(
        "error: the database URL must be a postgresql:// URL")
    bad = run("upgrade", "--url", full(head_url), "--lock-timeout", "soon")
    assert bad.exit_code == 2
    assert "lock_timeout must look like 250ms, 5s, 2min, 1h or 0 (at most 24 days), not 'soon'" \
        in bad.stderr


def test_usage_errors_exit_2() -> None:
    assert run("upgrade", "--bogus").exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert run("downgrade").exit_code == 2


def test_traceback_flag_shows_the_exception() -> None:
    with pytest.raises(Exception, match="unknown revision"):
        CliRunner().invoke(main, ["--traceback", "upgrade", "999", "--url", "postgresql://x@y/z"],
                           catch_exceptions=False)


def test_help_lists_every_command() -> None:
    out = run("--help").stdout
    for name in ("upgrade", "downgrade", "current", "history", "heads", "check", "sql",
                 "stamp", "revision", "dev-db"):
        assert name in out


def test_revision_refuses_an_installed_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from alquimista_schema.script import directory

    monkeypatch.setattr(directory, "VERSIONS_LOCATION",
                        Path("/usr/lib/python3/site-packages/alquimista_schema/migrations/versions"))
    result = run("revision", "-m", "x")
    assert one_error_line(result).startswith("error: revision writes into the package's source")


def test_without_a_url_the_local_database_is_started_and_upgraded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="alq-cli-devdb-"))  # traversable by a server user
    monkeypatch.setenv("ALQUIMISTA_DEVDB_DIR", str(root))
    try:
        first = run("upgrade")
        assert first.exit_code == 0, first.output
        assert "using the local database postgresql+psycopg2://postgres:***@127.0.0.1:" \
            in first.stderr
        assert first.stdout.strip().endswith(f"applied {COUNT} revision(s): base -> {HEAD}")
        assert run("current").stdout.strip() == f"{HEAD} (head)"
        status = run("dev-db").stdout
        assert "state:    running" in status
        assert str(root) in status
        assert run("dev-db", "stop").stdout.strip() == "stopped"
        assert "state:    stopped" in run("dev-db", "status").stdout
        # reused, not re-created: the data survived the stop
        assert run("current").stdout.strip() == f"{HEAD} (head)"
        password = (root / "password").read_text().strip()
        assert password not in first.output + status
        assert password in run("dev-db", "url", "--show-password").stdout
    finally:
        run("dev-db", "remove", "--yes", "--all")
    assert not root.exists()


def test_the_alembic_cli_from_the_repository_root(empty_url: URL) -> None:
    """`alembic upgrade head` and `alembic check` use the same environment as the package."""
    up = alembic("upgrade", "017", url=empty_url)
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines()[-1] == "applied 2 revision(s): base -> 017"
    assert alembic("upgrade", "head", url=empty_url).returncode == 0
    done = alembic("check", url=empty_url)
    assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected." in done.stdout
    missing = alembic("current", ALQUIMISTA_DEVDB="off")
    assert missing.returncode != 0
    assert missing.stdout.strip() == (
        "FAILED: no database URL: set DATABASE_URL or pass -x url=postgresql://... (the local "
        "database is switched off by ALQUIMISTA_DEVDB)")
    assert "Traceback" not in missing.stdout + missing.stderr


def test_a_plain_postgresql_url_uses_psycopg2(head_url: URL) -> None:
    """SQLAlchemy 2.1 maps postgresql:// to psycopg 3; the package ships psycopg2."""
    plain = head_url.set(drivername="postgresql").render_as_string(hide_password=False)
    down = run("downgrade", "017", "--url", plain)
    assert down.exit_code == 0, down.output
    up = run("upgrade", "--url", plain)
    assert up.exit_code == 0, up.output
    assert up.stdout.strip().endswith(f"applied {len(after('017'))} revision(s): 017 -> {HEAD}")
    assert one_error_line(run("current", "--url", "postgresql+psycopg://u@h/d")).startswith(
        "error: the database URL names driver 'psycopg'")


def test_negative_relative_steps_and_older_targets(head_url: URL) -> None:
    down = run("downgrade", "-1", "--url", full(head_url))
    assert down.exit_code == 0, down.output
    assert down.stdout.strip().endswith(f"reverted 1 revision(s): {HEAD} -> {PREVIOUS}")
    run("upgrade", "--url", full(head_url))
    older = run("upgrade", "017", "--url", full(head_url))
    assert older.stdout.strip() == (f"nothing to do: the database is at {HEAD}, already past 017 "
                                    "(use downgrade to go back)")


@pytest.mark.parametrize("args", [
    ["upgrade", "--lock-timeout", "banana"], ["downgrade", "017", "--statement-timeout", "-5s"],
    ["sql", ""], ["sql", "head:"], ["bundle", "--python", "abc"],
])
def test_bad_option_values_are_usage_errors(args: list[str]) -> None:
    assert run(*args, env={"ALQUIMISTA_DEVDB": "off"}).exit_code == 2


def test_a_bad_port_in_the_url() -> None:
    line = one_error_line(run("current", "--url", "postgresql://a:b@127.0.0.1:notaport/x"))
    assert line == "error: the database URL's port is not a number"


def test_revision_refuses_an_existing_id() -> None:
    line = one_error_line(run("revision", "-m", "dup", "--rev-id", "017"))
    assert line.startswith("error: revision '017' exists already")


def test_autogenerate_with_no_change_writes_nothing(head_url: URL,
                                                   scratch_scripts: Path) -> None:
    before = sorted(p.name for p in scratch_scripts.iterdir())
    result = run("revision", "--autogenerate", "-m", "nothing", "--url", full(head_url))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("nothing written")
    assert sorted(p.name for p in scratch_scripts.iterdir()) == before


def test_a_new_revision_is_linted_into_lint_json_as_it_is_written(
        scratch_scripts: Path) -> None:
    """No `lint --write` to remember: the enforce policy finds lint.json current."""
    lint_json = scratch_scripts.parent / "lint.json"
    before = json.loads(lint_json.read_text())
    assert NEXT not in before
    result = run("revision", "-m", "empty step", env={"ALQUIMISTA_DEVDB": "off"})
    assert result.exit_code == 0, result.output
    path = scratch_scripts / f"{NEXT}_empty_step.py"
    assert result.stdout.splitlines() == [
        f"wrote {path}", f"linted it into {lint_json} (commit both)"]
    assert json.loads(lint_json.read_text()) == {**before, NEXT: []}


def test_a_closed_stdout_never_stops_a_migration(empty_url: URL) -> None:
    """`upgrade | head -c 10`: the reader goes away; the migration still ends at head."""
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", "alquimista_schema", "upgrade", "--url",
                           full(empty_url)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.close()  # before the first line is written
        stderr = child.stderr.read().decode()
        assert child.wait(timeout=120) == 0, stderr
    assert "BrokenPipeError" not in stderr
    assert "Traceback" not in stderr
    assert run("current", "--url", full(empty_url)).stdout.strip() == f"{HEAD} (head)"


@pytest.mark.parametrize(("args", "message"), [
    (["upgrade", ""], "a target must be a revision id"),
    (["upgrade", "-1"], "upgrade -1 goes backwards: use downgrade -1"),
    (["downgrade", "+1"], "downgrade +1 goes forwards: use upgrade +1"),
    (["stamp", "--purge", ""], "a target must be a revision id"),
    (["upgrade", "head+1"], "past the end of the history"),
])
def test_malformed_targets_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [*args, "--url", "postgresql://u:p@127.0.0.1:1/d"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_dev_db_remove_without_a_terminal_asks_for_yes(tmp_path: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    env = {**os.environ, "ALQUIMISTA_DEVDB_DIR": str(tmp_path / "devdb")}
    done = subprocess.run([sys.executable, "-m", "alquimista_schema", "dev-db", "remove"],
                          stdin=subprocess.DEVNULL, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert "there is no terminal to ask: pass --yes" in done.stderr
    assert "Traceback" not in done.stderr
    closed = subprocess.run([sys.executable, "-c", "import os, sys; os.close(0); "
                             "from alquimista_schema.cli import main; "
                             "sys.argv = ['x', 'dev-db', 'remove']; main()"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert closed.returncode == 2, closed.stderr
    assert "pass --yes" in closed.stderr


def test_prod_downgrade_needs_confirm_and_changes_nothing_without_it(head_url: URL) -> None:
    """`ENVIRONMENT=prod alquimista-schema downgrade base` exited 0 with the rows gone."""
    with connect(head_url) as conn:
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('f.xlsx:2', 'f.xlsx', 'A')"))
        conn.commit()
    for environment in ("prod", "Production", "PROD"):
        refused = run("downgrade", "base", "--url", full(head_url),
                      env={"ENVIRONMENT": environment})
        assert refused.exit_code == 1
        assert "downgrade refused in prod" in one_error_line(refused)
        assert "--confirm base" in refused.stderr
    dev = run("downgrade", "base", "--url", full(head_url))  # tables with rows: even in dev
    assert "would drop what holds data: table leads (" in one_error_line(dev)
    assert run("current", "--url", full(head_url)).stdout.strip() == f"{HEAD} (head)"
    bad = run("downgrade", "020", "--url", full(head_url), env={"ENVIRONMENT": "qa"})
    assert "ENVIRONMENT must be one of dev, staging, prod" in one_error_line(bad)
    done = run("downgrade", "base", "--confirm", "base", "--url", full(head_url),
               env={"ENVIRONMENT": "prod"})
    assert done.exit_code == 0, done.output
    assert run("current", "--url", full(head_url)).stdout.strip() == "base (no revision applied)"


# --- the newcomer's first hour (issue 21) ---------------------------------------------


def test_a_local_database_ahead_of_the_code_gets_advice_for_a_local_database(
        local_database: URL, scratch_scripts: Path) -> None:
    """A revision file removed (or another branch): say so, suggest dev-db remove."""
    (scratch_scripts / f"{EXTRA}_extra.py").write_text(EXTRA_COLUMN)
    assert run("upgrade").exit_code == 0
    (scratch_scripts / f"{EXTRA}_extra.py").unlink()
    for verb in ("current", "upgrade", "check"):
        said = run(verb)
        assert said.exit_code == 1
        notice, line = said.stderr.splitlines()
        assert notice.startswith("using the local database")
        assert line.startswith(f"error: the local database is at revision '{EXTRA}', which "
                               f"these revision files do not have (their head is '{HEAD}')"), line
        assert "`alquimista-schema dev-db remove --yes`, then `upgrade`" in line
        assert "newer release" not in line
    stamped = run("stamp", HEAD, "--purge")
    assert stamped.stdout.strip() == f"stamped {HEAD} (was {EXTRA})"
    drift = run("check")
    assert drift.exit_code == 1
    assert drift.stderr.splitlines()[1].startswith(
        f"error: the database (at head {HEAD}) does not match the models: 1 difference(s)")
    assert drift.stderr.splitlines()[2] == "  - drop column dry_run_log.extra (TEXT)"



def test_revision_says_what_it_wrote(scratch_scripts: Path) -> None:
    written = run("revision", "-m", "an empty one")
    assert written.exit_code == 0, written.output
    assert written.stdout.splitlines() == [
        f"wrote {scratch_scripts / f'{NEXT}_an_empty_one.py'}",
        f"linted it into {scratch_scripts.parent / 'lint.json'} (commit both)"]
    assert "one above the newest numbered revision" in " ".join(
        run("revision", "--help").stdout.split())


def test_downgrade_without_a_revision_says_what_it_may_be() -> None:
    result = run("downgrade")
    assert result.exit_code == 2
    assert ("downgrade needs a REVISION to go back to: a revision id (e.g. 017), base, or a "
            "relative step such as -1") in result.stderr


@pytest.mark.parametrize("raw", ["\u0665", "1e1", "inf", "-1", "+5", "soon"])
def test_lock_wait_is_a_number_of_seconds_in_ascii(empty_url: URL, raw: str) -> None:
    """The grammar LOCK_WAIT_SECONDS has at the Lambda (settings.number_of_seconds):
    click's float would take an Arabic-Indic 5, 1e1, inf and +5."""
    result = CliRunner().invoke(main, ["upgrade", "head", "--url", full(empty_url),
                                       f"--lock-wait={raw}"])
    assert result.exit_code == 2, result.output
    assert f"must be a number of seconds, such as 60 or 2.5 (ASCII digits), not {raw!r}" \
        in result.output
    assert run("current", "--url", full(empty_url)).stdout.startswith("base")


def test_lock_wait_bounds_the_wait_for_a_held_lock(empty_url: URL) -> None:
    from alquimista_schema.runtime import locking

    with connect(empty_url) as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locking.LOCK_KEY})
        holder.commit()
        result = CliRunner().invoke(main, ["upgrade", "head", "--url", full(empty_url),
                                           "--lock-wait", "0.5"])
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": locking.LOCK_KEY})
        holder.commit()
    assert result.exit_code == 1, result.output
    assert "waited 0.5s" in one_error_line(result), result.output
