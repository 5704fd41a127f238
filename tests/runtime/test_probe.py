"""The no-op fast path: one query, no Alembic, never fooled by a stale manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import SchemaError
from alquimista_schema.runtime import probe
from alquimista_schema.script import manifest
from tests.script.test_lint import BAD_REVISION
from tests.support.helpers import TLS, Invoke, full, secret_for
from tests.support.revisions import EXTRA, HEAD, after


def test_committed_manifest_matches_the_script_directory() -> None:
    """It can never go stale unnoticed: regenerate with command.write_manifest()."""
    assert manifest.manifest_path().read_text() == manifest.manifest(command.heads()[0])
    assert manifest.known_head() == HEAD


def test_noop_at_head_is_one_query_on_a_reused_connection(head_url: URL) -> None:
    probe.drop()
    assert probe.probe(head_url).head == HEAD
    [conn] = probe._cached.values()
    pid = conn.get_backend_pid()
    assert probe.probe(head_url).head == HEAD
    assert probe._cached[probe._key(head_url)].get_backend_pid() == pid
    probe.drop()


def test_not_at_head_or_unversioned_takes_the_full_path(empty_url: URL) -> None:
    for at in (None, "017"):  # no version table, then below head
        if at is not None:
            command.upgrade(empty_url, at)
        answer = probe.probe(empty_url)
        assert answer.head is None
        assert answer.connection is not None  # handed over to the full path
        answer.connection.close()
    assert [a.revision for a in command.upgrade(empty_url, "head").applied] == after("017")
    assert probe.probe(empty_url).head == HEAD
    probe.drop()


def test_a_revision_added_by_hand_is_never_hidden(head_url: URL,
                                                  scratch_scripts: Path) -> None:
    (scratch_scripts / f"{EXTRA}_email_index.py").write_text(BAD_REVISION)
    recorded = scratch_scripts.parent / "manifest.json"
    assert json.loads(recorded.read_text())["head"] == HEAD  # stale
    assert manifest.known_head() is None
    assert [a.revision for a in command.upgrade(head_url, "head").applied] == [EXTRA]
    probe.drop()


COLD = """
import json, sys, time
from alquimista_schema.aws.runner import Runner
answer = Runner.from_environment().handle({}, request_id="cold")
print(json.dumps({"answer": answer, "alembic": "alembic" in sys.modules,
                  "orm": "sqlalchemy.orm" in sys.modules, "core": "sqlalchemy" in sys.modules}))
"""


def test_a_cold_noop_never_imports_alembic(head_url: URL, aws: Any, tls: TLS) -> None:
    with connect(head_url) as conn:
        conn.execute(text("CREATE ROLE cold_reader LOGIN PASSWORD 'cold-pass-1'"))
        conn.execute(text(f'GRANT ALL ON DATABASE "{head_url.database}" TO cold_reader'))
        conn.execute(text("GRANT SELECT ON alembic_version TO cold_reader"))
        conn.commit()
    secret = secret_for(head_url.set(username="cold_reader", password="cold-pass-1"))
    arn = aws.create_secret(Name="alquimista/cold", SecretString=json.dumps(secret))["ARN"]
    env = {**os.environ, "DB_SECRET_ARN": arn, "DB_SSLROOTCERT": str(tls.ca)}
    done = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"]["status"] == "noop", result
    assert result["answer"]["to_revision"] == HEAD
    assert result["alembic"] is False
    assert result["orm"] is False
    assert result["core"] is False  # not even SQLAlchemy's core, as the README says
    with connect(head_url) as conn:
        conn.execute(text(f'REVOKE ALL ON DATABASE "{head_url.database}" FROM cold_reader'))
        conn.execute(text("REVOKE SELECT ON alembic_version FROM cold_reader"))
        conn.execute(text("DROP ROLE cold_reader"))
        conn.commit()


def test_importing_the_verbs_loads_neither_alembic_nor_the_orm() -> None:
    """command.upgrade answers the cold no-op itself: its import must stay light."""
    probe = ("import json, sys; import alquimista_schema.command; print(json.dumps("
             "[m for m in ('alembic', 'sqlalchemy', 'sqlalchemy.orm', 'boto3') "
             "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []


# --- only a plain "at head" is answered fast: one row, and it is the head ---------------

VERSION_TABLES = {
    # rows of alembic_version, in the order they are inserted; the fast answer expected
    "one row, the head": ([HEAD], HEAD),
    "one row, below head": (["017"], None),
    "no row": ([], None),
    "the head, then an ancestor (hand-edited)": ([HEAD, "017"], None),
    "an ancestor, then the head (hand-edited)": (["017", HEAD], None),
    "the head and another branch's revision": ([HEAD, "c0ffee"], None),
}


def set_versions(url: URL, rows: list[str]) -> None:
    with connect(url) as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        for row in rows:
            conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": row})
        conn.commit()


def versions(url: URL) -> list[str]:
    with connect(url) as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


@pytest.mark.parametrize(("rows", "head"), VERSION_TABLES.values(), ids=list(VERSION_TABLES))
def test_only_a_single_row_at_head_is_answered_fast(head_url: URL, rows: list[str],
                                                    head: str | None) -> None:
    set_versions(head_url, rows)
    probe.drop()
    answer = probe.probe(head_url)
    try:
        assert answer.head == head
        # not at head: the connection that asked is handed to the run skeleton
        assert (answer.open_connection() is None) is (head is not None)
    finally:
        if answer.connection is not None:
            answer.connection.close()
        probe.drop()


TWO_ROWS = [
    pytest.param(["017", HEAD], id="ancestor-then-head"),
    pytest.param([HEAD, "c0ffee"], id="head-and-another-branch"),
    pytest.param([HEAD, "017"], id="head-then-ancestor"),
]


def cli_upgrade(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> str | None:
    """Upgrade through the CLI; return its error line, or None when it succeeded."""
    result = CliRunner().invoke(main, ["upgrade", "--url", full(url)])
    return None if result.exit_code == 0 else result.stderr


def lambda_upgrade(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> str | None:
    answer = invoke({"action": "upgrade"}, secret=make_secret(secret_for(url)))
    return answer["error"] if answer["status"] == "error" else None


def library_upgrade(url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> str | None:
    try:
        command.upgrade(url)
    except SchemaError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("door", [cli_upgrade, lambda_upgrade, library_upgrade],
                         ids=["cli", "lambda", "library"])
@pytest.mark.parametrize("rows", TWO_ROWS)
def test_two_rows_in_alembic_version_are_never_already_at_head(
        head_url: URL, invoke: Invoke, make_secret: Callable[..., str],
        door: Callable[..., str | None], rows: list[str]) -> None:
    """A branched or hand-edited version table is an error to look at, never a no-op
    (the doors with the fast path; plain alembic always takes the full one)."""
    set_versions(head_url, rows)
    probe.drop()
    error = door(head_url, invoke, make_secret)
    probe.drop()
    assert error is not None, "answered as if at head"
    # said as what it is, never as a revision failing to re-apply over its own objects
    assert "failed and was rolled back" not in error, error
    assert all(row in error for row in rows if row != HEAD) or "c0ffee" in error, error
    assert sorted(versions(head_url)) == sorted(rows)  # and changed nothing


def test_the_probe_bounds_its_one_query_and_names_itself(head_url: URL) -> None:
    """Its defaults: 10 s to connect and to answer, as alquimista-schema (pg_stat_activity)."""
    probe.drop()
    assert probe.probe(head_url).head == HEAD
    [conn] = probe._cached.values()
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('statement_timeout'), "
                    "current_setting('application_name')")
        assert cur.fetchone() == ("10s", "alquimista-schema")
    assert conn.get_dsn_parameters()["connect_timeout"] == "10"
    probe.drop()
    tight = probe.probe(head_url, statement_timeout=0.0001, application_name="x")
    if tight.head is not None:  # answered within 1 ms; on a loaded machine it may be cut
        [conn] = probe._cached.values()
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('statement_timeout')")
            assert cur.fetchone() == ("1ms",)  # never 0, which would mean no bound
    probe.drop()
    assert probe._cached == {}


def test_a_connection_is_reused_only_for_the_very_same_url(head_url: URL) -> None:
    """Keyed by the whole URL, password included: another password is another login."""
    probe.drop()
    assert probe.probe(head_url).head == HEAD
    wrong = probe.probe(head_url.set(password="not-the-password"))
    assert (wrong.head, wrong.connection) == (None, None)  # refused, not the cached one
    assert probe._cached == {}  # the failed attempt dropped what was cached
    probe.drop()


def test_a_closed_connection_is_never_handed_over(empty_url: URL) -> None:
    probe.drop()
    answer = probe.probe(empty_url)  # unversioned: handed over
    assert answer.head is None
    assert answer.open_connection() is answer.connection is not None
    answer.connection.close()
    assert answer.open_connection() is None
    assert probe.Answer(None).open_connection() is None
