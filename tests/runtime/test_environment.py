"""The plain `alembic` command: the same lock, guards and local database as the verbs."""

from __future__ import annotations

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
from tests.support.helpers import alembic

CHAIN = ["lead_ingestion", "017", "018", "019", "020", "021"]


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
    assert sum("Running upgrade 020 -> 021" in p.stderr for p in done) == 1
    assert command.current(migrator_url) == "021"
    with connect(migrator_url) as conn:
        [row] = audit.entries(conn)  # the run that changed something, recorded like ours
    assert (row["from_revision"], row["to_revision"]) == (None, "021")
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
    assert "would drop table(s) holding rows: leads" in refused.stdout
    assert "-x confirm=base" in refused.stdout
    assert command.current(head_url) == "021"
    done = alembic("-x", "confirm=base", "downgrade", "base", url=head_url)
    assert done.returncode == 0, done.stderr
    assert command.current(head_url) is None


@pytest.mark.parametrize("environment", ["prod", "Production", " PROD "])
def test_alembic_downgrade_in_prod_needs_confirm(head_url: URL, environment: str) -> None:
    refused = alembic("downgrade", "-1", url=head_url, ENVIRONMENT=environment)
    assert refused.returncode != 0
    _said_once(refused.stdout + refused.stderr)
    assert "downgrade refused in prod" in refused.stdout
    assert command.current(head_url) == "021"
    done = alembic("-x", "confirm=-1", "downgrade", "-1", url=head_url, ENVIRONMENT=environment)
    assert done.returncode == 0, done.stderr
    assert command.current(head_url) == "020"


def test_an_unknown_environment_is_bad_config(head_url: URL) -> None:
    refused = alembic("downgrade", "-1", url=head_url, ENVIRONMENT="prd")
    assert refused.returncode != 0
    _said_once(refused.stdout + refused.stderr)
    assert "ENVIRONMENT must be one of dev, staging, prod" in refused.stdout
    assert command.current(head_url) == "021"


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
        assert "Running upgrade 020 -> 021" in done.stderr
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
