"""The plain `alembic` command: the same lock, guards and local database as the verbs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command, settings
from alquimista_schema.connect.database import connect
from alquimista_schema.connect.local import DevDatabase
from alquimista_schema.errors import ConfigurationError
from alquimista_schema.runtime import audit
from tests.support.helpers import MIGRATOR_PASSWORD, ROOT, alembic, leaks
from tests.support.revisions import COUNT, HEAD, NEXT, PREVIOUS, REVISIONS

CHAIN = REVISIONS


def _said_once(output: str) -> None:
    """An error is one FAILED line: no ERROR log line repeating it, no traceback."""
    assert output.count("FAILED:") == 1, output
    assert "ERROR [" not in output, output
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_four_parallel_alembic_upgrades_take_the_lock(migrator_url: URL) -> None:
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: alembic("upgrade", "head", url=migrator_url), range(4)))
    for proc in done:
        assert proc.returncode == 0, proc.stderr
        assert "UniqueViolation" not in proc.stderr + proc.stdout
    assert sum(f"applied {COUNT} revision(s): base -> {HEAD}" in p.stdout for p in done) == 1
    assert sum(f"nothing to do: the database is already at {HEAD}" in p.stdout for p in done) == 3
    assert command.current(migrator_url) == HEAD
    with connect(migrator_url) as conn:
        [row] = audit.entries(conn)  # the run that changed something, recorded like ours
    assert (row["from_revision"], row["to_revision"]) == (None, HEAD)
    assert [a["revision"] for a in row["applied"]] == CHAIN
    assert all(a["duration_ms"] >= 0 and a["description"] for a in row["applied"])


def test_alembic_downgrade_dropping_rows_needs_confirm(head_url: URL) -> None:
    with connect(head_url) as conn:
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('a.xlsx:2', 'a.xlsx', 'Plan1')"))
        conn.commit()
    refused = alembic("downgrade", "base", url=head_url)
    assert refused.returncode != 0
    _said_once(refused.stdout + refused.stderr)
    assert "would drop what holds data: table leads (" in refused.stdout
    assert "-x confirm=base" in refused.stdout
    assert command.current(head_url) == HEAD
    done = alembic("-x", "confirm=base", "downgrade", "base", url=head_url)
    assert done.returncode == 0, done.stderr
    assert command.current(head_url) is None


@pytest.mark.parametrize("environment", ["prod", "Production", " PROD "])
def test_alembic_downgrade_in_prod_needs_confirm(head_url: URL, environment: str) -> None:
    refused = alembic("downgrade", "-1", url=head_url, ENVIRONMENT=environment)
    assert refused.returncode != 0
    _said_once(refused.stdout + refused.stderr)
    assert "downgrade refused in prod" in refused.stdout
    assert command.current(head_url) == HEAD
    done = alembic("-x", "confirm=-1", "downgrade", "-1", url=head_url, ENVIRONMENT=environment)
    assert done.returncode == 0, done.stderr
    assert command.current(head_url) == PREVIOUS


def test_an_unknown_environment_is_bad_config(head_url: URL) -> None:
    refused = alembic("downgrade", "-1", url=head_url, ENVIRONMENT="prd")
    assert refused.returncode != 0
    _said_once(refused.stdout + refused.stderr)
    assert "ENVIRONMENT must be one of dev, staging, prod" in refused.stdout
    assert command.current(head_url) == HEAD


def test_an_alembic_error_prints_once(head_url: URL) -> None:
    failed = alembic("upgrade", "999", url=head_url)
    assert failed.returncode != 0
    _said_once(failed.stdout + failed.stderr)


@pytest.mark.slow
def test_alembic_upgrade_without_a_url_uses_the_local_database() -> None:
    root = Path(tempfile.mkdtemp(prefix="alq-alembic-devdb-"))  # traversable by a server user
    try:
        done = alembic("upgrade", "head", ALQUIMISTA_DEVDB_DIR=str(root))
        assert done.returncode == 0, done.stderr
        notices = [line for line in done.stderr.splitlines() if "using the local database" in line]
        assert len(notices) == 1, done.stderr
        assert "postgresql+psycopg2://postgres:***@127.0.0.1:" in notices[0]
        assert f"applied {COUNT} revision(s): base -> {HEAD}" in done.stdout
    finally:
        DevDatabase(root).remove()


@pytest.mark.parametrize(("value", "name"), [
    (None, "dev"), ("", "dev"), ("dev", "dev"), ("Staging", "staging"), ("prod", "prod"),
    ("PROD", "prod"), ("production", "prod"), (" Production ", "prod"),
])
def test_environment_names(value: str | None, name: str) -> None:
    assert settings.environment_name(value) == name


@pytest.mark.parametrize("value", ["prd", "live", "test", "prod-eu"])
def test_other_environment_names_are_bad_config(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ENVIRONMENT must be one of"):
        settings.environment_name(value)


# --- every alembic command, with nothing set (issue 21) ---------------------------------

CHATTER = ("Context impl", "Will assume transactional DDL", "Running upgrade",
           "Generating static SQL", "Traceback")
NOTICE = "using the local database postgresql+psycopg2://postgres:***@127.0.0.1:"


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What a user sees: the notice (stderr) comes before the results (stdout)."""
    said = done.stderr + done.stdout
    for noise in CHATTER:
        assert noise not in said, said
    return said.splitlines()


def test_every_alembic_command_works_from_the_root_with_nothing_set(
        local_database: URL) -> None:
    """The local database when a command needs one (one notice line), none otherwise."""
    history = alembic("history")
    assert history.returncode == 0, history.stderr
    assert _lines(history)[0].startswith(f"{PREVIOUS} -> {HEAD} (head), ")
    assert len(_lines(history)) == COUNT  # no notice: history reads only the revision files
    assert _lines(alembic("heads")) == [f"{HEAD} (head)"]
    assert _lines(alembic("current")) == [_lines(alembic("current"))[0]]
    assert _lines(alembic("current"))[0].startswith(NOTICE)
    up = _lines(alembic("upgrade", "head"))
    assert up[0].startswith(NOTICE)
    assert [line.split()[0] for line in up[1:-1]] == CHAIN
    assert up[-1] == f"applied {COUNT} revision(s): base -> {HEAD}"
    assert _lines(alembic("upgrade", "head"))[1:] == [
        f"nothing to do: the database is already at {HEAD}"]
    assert _lines(alembic("current"))[1:] == [f"{HEAD} (head)"]
    assert _lines(alembic("check"))[1:] == ["No new upgrade operations detected."]
    down = _lines(alembic("downgrade", "-1"))
    assert down[-1] == f"reverted 1 revision(s): {HEAD} -> {PREVIOUS}"
    assert len(down) == 3
    assert command.current(local_database) == PREVIOUS


def test_history_needs_no_database_at_all() -> None:
    done = alembic("history", ALQUIMISTA_DEVDB="off")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(_lines(done)) == COUNT


@pytest.mark.parametrize("url", [
    "postgresql://migrator:{password}@127.0.0.1:1/x",  # nothing listens
    "postgresql://postgres:{password}@{host}:{port}/alquimista",  # refused credentials
])
def test_a_wrong_url_is_one_line_without_the_password(url: str, local_database: URL) -> None:
    from urllib.parse import quote

    written = url.format(password=quote(MIGRATOR_PASSWORD, safe=""),
                         host=local_database.host, port=local_database.port)
    for args in (["current"], ["upgrade", "head"], ["check"]):
        done = alembic("-x", f"url={written}", *args)
        assert done.returncode != 0
        [line] = _lines(done)
        assert line.startswith(("FAILED: cannot reach PostgreSQL at 127.0.0.1:1",
                                "FAILED: PostgreSQL at 127.0.0.1")), line
        assert not leaks(done.stdout + done.stderr)


def test_alembic_revision_autogenerate_writes_exactly_the_model_change(
        local_database: URL, tmp_path: Path) -> None:
    """The README's example, in a copy of the checkout whose model gained a column."""
    tree = tmp_path / "checkout"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "alembic", tree / "alembic")
    shutil.copy(ROOT / "alembic.ini", tree / "alembic.ini")
    path = f"{tree / 'src'}{os.pathsep}{ROOT}"
    assert alembic("upgrade", "head", cwd=tree, PYTHONPATH=path).returncode == 0
    models = tree / "src" / "alquimista_schema" / "schema" / "models.py"
    models.write_text(models.read_text().replace(
        "    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)\n"
        "\n    __table_args__ = (\n        CheckConstraint(_in_list(\"canal_decidido\"",
        "    created_at: Mapped[datetime | None] = mapped_column(Timestamp, server_default=NOW)\n"
        "    canal_detalhe: Mapped[str | None] = mapped_column(Text)\n"
        "\n    __table_args__ = (\n        CheckConstraint(_in_list(\"canal_decidido\"", 1))
    made = alembic("revision", "--autogenerate", "-m", "add canal_detalhe", cwd=tree,
                   PYTHONPATH=path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert len(_lines(made)) <= 4, made.stdout + made.stderr
    written = tree / "src" / "alquimista_schema" / "migrations" / "versions"
    new = (written / f"{NEXT}_add_canal_detalhe.py").read_text()
    body = new.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    ops = [line.strip() for line in body.splitlines() if line.strip().startswith("op.")]
    assert ops == ["op.add_column('dry_run_log', sa.Column('canal_detalhe', sa.Text(), "
                   "nullable=True))"]
    manifest = json.loads((written.parent / "manifest.json").read_text())
    assert manifest["head"] == NEXT
    # linted as written: the enforce policy finds lint.json current, no other step
    assert NEXT in json.loads((written.parent / "lint.json").read_text())
    assert _lines(alembic("upgrade", "head", cwd=tree, PYTHONPATH=path))[-1] == \
        f"applied 1 revision(s): {HEAD} -> {NEXT}"
    assert _lines(alembic("check", cwd=tree, PYTHONPATH=path))[-1] == \
        "No new upgrade operations detected."


def test_an_unknown_x_key_is_refused_with_the_nearest_known_one(empty_url: URL) -> None:
    """Issue 28: ``-x lock_timout=2s`` was ignored, and the run went on with the default."""
    done = alembic("-x", "lock_timout=2s", "upgrade", "head", url=empty_url)
    assert done.returncode != 0, done.stdout
    output = done.stdout + done.stderr
    _said_once(output)
    assert "unknown -x key 'lock_timout': did you mean -x lock_timeout=...?" in output, output
    assert "nothing was run" in output
    assert command.current(empty_url) is None
    far = alembic("-x", "zzz=1", "current", url=empty_url)
    assert "unknown -x key 'zzz': (known: url, confirm," in far.stdout + far.stderr
