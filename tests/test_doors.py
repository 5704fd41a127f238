"""One truth across doors: realistic revisions give the same database through each one.

The corpus (tests/corpus: constraints under the naming convention, enums, bulk_insert of
tabs, quotes, backslashes, NaN and empty arrays, bindparams, dollar-quoted functions,
DO blocks, E-strings, comments, views, CREATE INDEX CONCURRENTLY in an autocommit
block...) is applied through the CLI, the Lambda handler and plain ``alembic``, each in
a process of its own, and the database compared with one that Alembic's own command
API built: ``pg_dump`` of the schema, and every corpus row.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from alembic import command as alembic_command
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect
from alquimista_schema.connect.pgbin import find_bindir
from alquimista_schema.runtime import audit, ledger, locking
from alquimista_schema.script import directory
from tests.corpus.rows import ROW_QUERIES
from tests.support.doors import Door
from tests.support.helpers import alembic, plain, url_for
from tests.support.revisions import HEAD as PACKAGE_HEAD

HEAD = "c13"  # the corpus head (the package head is PACKAGE_HEAD)


@contextlib.contextmanager
def fresh_database(server: URL) -> Iterator[URL]:
    """Another empty database on the test server, dropped afterwards."""
    name = f"ref_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield url_for(server, name)
    finally:
        with psycopg.connect(plain(server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


def snapshot(url: URL, *, rows: bool = True) -> dict[str, Any]:
    """The schema as pg_dump writes it, the version, and (at the corpus head) every row."""
    dump = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         f"--exclude-table={audit.TABLE}", f"--exclude-table={audit.TABLE}_id_seq",
         f"--exclude-table={ledger.TABLE}",
         plain(url)], capture_output=True, text=True, check=True).stdout
    # pg_dump 15.14+ writes a random \restrict key; the database name is not the schema
    schema = [line for line in dump.splitlines()
              if not line.startswith(("\\restrict", "\\unrestrict", "-- Dumped"))]
    with connect(url) as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        data = [[tuple(r) for r in conn.execute(text(q))] for q in ROW_QUERIES] if rows else []
    return {"schema": schema, "version": version, "rows": data}


def by_alembic(url: URL, target: str) -> None:
    """Alembic's own command API, online: the reference."""
    with connect(url) as conn:
        alembic_command.upgrade(directory.make_config(connection=conn), target)


def test_the_corpus_builds_the_same_database_through_every_door(
        door: Door, empty_url: URL, pg_server: URL) -> None:
    with fresh_database(pg_server) as reference:
        by_alembic(reference, "c06")
        halfway = snapshot(reference, rows=False)
        by_alembic(reference, "head")
        expected = snapshot(reference)
    assert expected["version"] == HEAD
    first = door.run("upgrade", empty_url, "c06")  # a first run, then a later one
    assert first.ok, first.output
    assert snapshot(empty_url, rows=False) == halfway
    later = door.run("upgrade", empty_url, "head")
    assert later.ok, later.output
    got = snapshot(empty_url)
    assert got["schema"] == expected["schema"]
    assert got["rows"] == expected["rows"]
    assert got["version"] == HEAD


def test_the_corpus_goes_down_and_up_again_through_every_door(
        door: Door, empty_url: URL, pg_server: URL) -> None:
    with fresh_database(pg_server) as reference:
        by_alembic(reference, PACKAGE_HEAD)
        at_package_head = snapshot(reference, rows=False)
        by_alembic(reference, "head")
        at_head = snapshot(reference)
    assert door.run("upgrade", empty_url, "head").ok
    refused = door.run("downgrade", empty_url, PACKAGE_HEAD)  # tables holding rows: confirm
    assert not refused.ok
    assert "would drop what holds data" in refused.output + str(refused.answer)
    down = door.run("downgrade", empty_url, PACKAGE_HEAD, confirm=PACKAGE_HEAD)
    assert down.ok, down.output
    assert snapshot(empty_url, rows=False) == at_package_head
    assert door.run("upgrade", empty_url, "head").ok
    assert snapshot(empty_url) == at_head


def test_a_failed_run_audits_the_last_revision_committed(door: Door, empty_url: URL) -> None:
    """c05 fails after its first statement: c01..c04 stay, the audit row says c04."""
    c05 = next((door.folder / "versions").glob("c05_*.py"))
    c05.write_text(c05.read_text().replace(
        "def upgrade() -> None:\n",
        "def upgrade() -> None:\n    op.execute('CREATE TABLE corpus_started (id int)')\n"
        "    op.execute('SELECT 1/0')\n", 1))
    done = door.run("upgrade", empty_url, "head")
    assert not done.ok
    assert "revision c05 failed and was rolled back: division by zero" in \
        done.output + str(done.answer)
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "c04"
        assert conn.execute(text("SELECT to_regclass('corpus_started')")).scalar() is None
        row = audit.entries(conn)[0]
    assert (row["outcome"], row["error_code"]) == ("error", "MIGRATION_FAILED")
    assert (row["from_revision"], row["to_revision"]) == (None, "c04")
    assert [a["revision"] for a in row["applied"]][-4:] == ["c01", "c02", "c03", "c04"]


def test_a_version_table_of_two_rows_is_refused_by_every_door(door: Door,
                                                               empty_url: URL) -> None:
    """The head first, an ancestor second: never "already at head", never a re-apply."""
    assert door.run("upgrade", empty_url, "head").ok
    with connect(empty_url) as conn:
        conn.execute(text("INSERT INTO alembic_version VALUES ('c04')"))
        conn.commit()
    before = snapshot(empty_url)
    done = door.run("upgrade", empty_url, "head")
    assert not done.ok, done.output
    said = done.output + str(done.answer)
    assert "alembic_version holds 2 revisions (c13, c04)" in said, said
    if door.name == "lambda":
        assert done.answer["error_code"] == "MULTIPLE_DB_REVISIONS"
    with connect(empty_url) as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert sorted(rows) == ["c04", "c13"]
    assert snapshot(empty_url, rows=True)["schema"] == before["schema"]


def test_two_runners_over_a_concurrently_revision_both_finish(
        door: Door, head_url: URL) -> None:
    """CREATE INDEX CONCURRENTLY waits for every open transaction: the runner waiting for
    the lock must hold none, or the two would wait on each other."""
    with connect(head_url) as holder:
        driver = holder.connection.driver_connection
        assert locking.try_lock(driver)  # both start while the lock is held
        runners = [door.popen("upgrade", head_url, "head") for _ in range(2)]
        with contextlib.suppress(subprocess.TimeoutExpired):
            runners[0].wait(timeout=2)
        locking.unlock(driver)
        results = [r.communicate(timeout=180)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], results
    with connect(head_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        valid = conn.execute(text(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname IN ('corpus_notes_title_idx', 'corpus_orders_reference_lower_idx')"
            " AND i.indisvalid")).scalar()
        applied = [r for r in audit.entries(conn, limit=5)
                   if any(a["revision"] == "c01" for a in r["applied"])]
    assert valid == 2  # both corpus indexes, built and valid
    assert len(applied) == 1  # one applied the corpus; the other found it done


def test_the_doors_read_the_scratch_corpus(corpus_scripts: Path) -> None:
    assert [p.name[:3] for p in sorted((corpus_scripts / "versions").glob("c*.py"))] == [
        f"c{n:02d}" for n in range(1, 14)]


def test_every_door_records_each_revisions_checksum_and_removes_it_going_down(
        door: Door, empty_url: URL) -> None:
    assert door.run("upgrade", empty_url, "c06").ok
    carried = ledger.carried(directory.script_directory())
    chain = list(carried)
    with connect(empty_url) as conn:
        recorded = {r.revision: (r.checksum, r.how) for r in conn.execute(
            text(f"SELECT revision, checksum, how FROM {ledger.TABLE}"))}
    assert recorded == {rev: (carried[rev], "applied")
                        for rev in chain[:chain.index("c06") + 1]}
    assert door.run("downgrade", empty_url, PACKAGE_HEAD, confirm=PACKAGE_HEAD).ok
    with connect(empty_url) as conn:
        left = {r[0] for r in conn.execute(text(f"SELECT revision FROM {ledger.TABLE}"))}
    assert left == set(chain[:chain.index(PACKAGE_HEAD) + 1])


# the corpus ships no lint results (prod would refuse it for that); no cluster to snapshot
PROD = {"ENVIRONMENT": "prod", "SNAPSHOT_BEFORE_UPGRADE": "false", "LINT_POLICY": "off"}


def test_an_edited_applied_revision_stops_prod_until_accepted_at_every_door(
        door: Door, empty_url: URL) -> None:
    """Refused in prod, changing nothing; accepted only when asked, recording the new sum."""
    assert door.run("upgrade", empty_url, "c06").ok
    [edited] = (door.folder / "versions").glob("c03_*.py")
    edited.write_text(edited.read_text() + "\nEDITED = True  # a statement: a new checksum\n")
    refused = door.run("upgrade", empty_url, "head", env=PROD)
    assert not refused.ok, refused.output
    said = refused.output + str(refused.answer)
    assert "c03: edited after it was applied" in said, said
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "c06"
    accepted = door.run("upgrade", empty_url, "head", env=PROD, accept_checksums=True)
    assert accepted.ok, accepted.output
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        recorded = conn.execute(text(f"SELECT checksum FROM {ledger.TABLE} "
                                     "WHERE revision = 'c03'")).scalar()
    assert recorded == ledger.carried(directory.script_directory())["c03"]


def test_plain_alembic_refuses_a_flag_that_is_not_true_or_false(corpus_scripts: Path,
                                                                 empty_url: URL) -> None:
    for value in ("yes", "1", "on"):
        done = alembic("-c", str(corpus_scripts.parent / "alembic.ini"), "-x",
                       f"accept_checksums={value}", "upgrade", "head", url=empty_url)
        assert done.returncode == 255, done.stdout + done.stderr
        assert done.stdout.strip().splitlines()[-1] == (
            f"FAILED: -x accept_checksums must be true or false, not {value!r}")
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None


def test_prod_enforces_the_lint_policy_at_every_door(door: Door, empty_url: URL) -> None:
    """ENVIRONMENT=prod means LINT_POLICY=enforce wherever the upgrade starts; LINT_POLICY
    says otherwise the same way at every door (the corpus ships no lint results)."""
    assert door.run("upgrade", empty_url, "c06").ok
    prod = {"ENVIRONMENT": "prod", "SNAPSHOT_BEFORE_UPGRADE": "false"}
    refused = door.run("upgrade", empty_url, "head", env=prod)
    assert not refused.ok, refused.output
    said = refused.output + str(refused.answer)
    assert "revision c07 has no lint result" in said, said
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "c06"
    assert door.run("upgrade", empty_url, "head", env={**prod, "LINT_POLICY": "warn"}).ok


def test_an_upgrade_to_a_target_behind_the_database_says_so_at_every_door(
        door: Door, empty_url: URL) -> None:
    """Not a bare "noop": every door says the database is past the target, in one line."""
    from tests.support.revisions import PREVIOUS

    assert door.run("upgrade", empty_url, PACKAGE_HEAD).ok
    done = door.run("upgrade", empty_url, PREVIOUS)
    assert done.ok, done.output
    line = (f"nothing to do: the database is at {PACKAGE_HEAD}, already past {PREVIOUS} "
            "(use downgrade to go back)")
    if door.name == "lambda":
        assert (done.answer["status"], done.answer["message"]) == ("noop", line)
    else:
        assert line in done.output.splitlines(), done.output
