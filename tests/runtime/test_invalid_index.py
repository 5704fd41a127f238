"""What a failed concurrent index build leaves is repaired, and reported (issue 29).

A ``CREATE UNIQUE INDEX CONCURRENTLY`` over duplicate rows fails after it has made the
index: PostgreSQL leaves it INVALID (kept up to date on every write, never used). A
re-run's ``IF NOT EXISTS`` then "succeeds" over it, and autogenerate's ``check`` counts it
as present. Now the next upgrade drops it (concurrently) before the revision builds it
for real, at every door (``door``, by name), and ``check`` names an INVALID index.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.aws.runner import Runner
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DriftDetected, NotAtHead
from alquimista_schema.runtime import repair
from alquimista_schema.runtime.run import Run
from tests.support.doors import Door
from tests.support.helpers import full, plain, released_after
from tests.support.revisions import scratch_revision

TABLE = scratch_revision("zz_table", "c13", ["CREATE TABLE zz_items (code text)",
                                             "INSERT INTO zz_items VALUES ('a'), ('a'), ('b')"],
                         "DROP TABLE zz_items", "A table with a duplicate code.")

INDEX = scratch_revision("zz_index", "zz_table", """
with op.get_context().autocommit_block():
    op.execute("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS zz_items_code ON zz_items (code)")
""", """
with op.get_context().autocommit_block():
    op.execute("DROP INDEX CONCURRENTLY IF EXISTS zz_items_code")
""", "A unique index, built concurrently.")


# The same index, its name built at run time: it is spelt out only in the SQL rendered
# offline, which the repair reads too (runtime/repair.py).
RUNTIME_NAMED = scratch_revision("zz_index", "zz_table", """
name = "_".join(["zz", "items", "code"])
with op.get_context().autocommit_block():
    op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON zz_items (code)")
""", """
with op.get_context().autocommit_block():
    op.execute("DROP INDEX CONCURRENTLY IF EXISTS zz_items_code")
""", "A unique index, built concurrently, named at run time.")
INDEXES = {"named in the source": INDEX, "named at run time": RUNTIME_NAMED}


def validity(url: URL, index: str) -> bool | None:
    """Whether ``index`` is valid (None: there is no such index)."""
    with connect(url) as conn:
        return conn.execute(text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :n"), {"n": index}).scalar()


@pytest.mark.parametrize("index", INDEXES)
def test_the_next_run_drops_the_invalid_index_and_builds_it_for_real_at_every_door(
        door: Door, head_url: URL, index: str) -> None:
    (door.folder / "versions" / "zz_table.py").write_text(TABLE)
    (door.folder / "versions" / "zz_index.py").write_text(INDEXES[index])
    failed = door.run("upgrade", head_url, "head")
    assert not failed.ok, failed.output
    assert "could not create unique index" in failed.output, failed.output
    assert validity(head_url, "zz_items_code") is False  # INVALID, left behind
    assert command.current(head_url) == "zz_table"
    with psycopg.connect(plain(head_url), autocommit=True) as conn:  # the data fixed
        conn.execute(b"DELETE FROM zz_items WHERE code = 'a'")
        conn.execute(b"INSERT INTO zz_items VALUES ('a')")
    done = door.run("upgrade", head_url, "head")
    assert done.ok, done.output
    flat = " ".join(done.output.split())
    assert "dropped the INVALID index zz_items_code on zz_items" in flat, done.output
    assert validity(head_url, "zz_items_code") is True  # built for real, not passed over
    assert command.current(head_url) == "zz_index"


def test_a_build_cancelled_by_its_lock_timeout_is_named_by_check_then_built_at_every_door(
        door: Door, head_url: URL) -> None:
    """A writer's open transaction on zz_items: the concurrent build makes its index, then
    waits for the writer, and ``lock_timeout`` cancels it mid-way, leaving it INVALID.
    ``check`` names it while the database is short of head; once the writer lets go, the
    next run drops it and builds it for real."""
    (door.folder / "versions" / "zz_table.py").write_text(TABLE.replace("('a'), ('a')", "('a')"))
    (door.folder / "versions" / "zz_index.py").write_text(INDEX)
    command.upgrade(head_url, "zz_table")
    fast = {"ALQUIMISTA_LOCK_TIMEOUT": "1s", "LOCK_RETRIES": "0"}
    with psycopg.connect(plain(head_url)) as writer:
        writer.execute(b"INSERT INTO zz_items VALUES ('c')")  # open: RowExclusiveLock held
        failed = door.run("upgrade", head_url, "head", env=fast)
        assert not failed.ok, failed.output
        assert "could not get a lock within lock_timeout" in failed.output, failed.output
        flat = " ".join(failed.output.split())
        assert f"pid {writer.info.backend_pid}," in flat, failed.output  # the writer, named
        assert "holding its open transaction (virtualxid wait)" in flat, failed.output
        assert validity(head_url, "zz_items_code") is False  # made, then cancelled
        assert command.current(head_url) == "zz_table"
        with pytest.raises(NotAtHead, match="index zz_items_code on zz_items is INVALID"):
            command.check(head_url)
        writer.rollback()
    done = door.run("upgrade", head_url, "head", env=fast)
    assert done.ok, done.output
    assert "dropped the INVALID index zz_items_code" in " ".join(done.output.split())
    assert validity(head_url, "zz_items_code") is True
    assert command.current(head_url) == "zz_index"


def test_a_cancelled_build_retried_in_the_run_is_repaired_first(
        corpus_scripts: Path, head_url: URL) -> None:
    """The writer lets go while the run backs off: the retry drops the INVALID index the
    first attempt left, and builds it for real (``IF NOT EXISTS`` never passes over it)."""
    versions = corpus_scripts / "versions"
    (versions / "zz_table.py").write_text(TABLE.replace("('a'), ('a')", "('a')"))
    (versions / "zz_index.py").write_text(INDEX)
    command.upgrade(head_url, "zz_table")
    writer = psycopg.connect(plain(head_url))
    writer.execute(b"INSERT INTO zz_items VALUES ('c')")
    try:
        with released_after(1.5, writer.rollback):
            result = command.upgrade(head_url, "head", run=Run(lock_timeout="1s"))
    finally:
        writer.close()
    assert [a["sqlstate"] for a in result.attempts] == ["55P03"], result.attempts
    assert validity(head_url, "zz_items_code") is True
    assert command.current(head_url) == "zz_index"


BROKEN = [b"INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao, ambiente) "
          b"SELECT gen_random_uuid(), 'whatsapp', 'zz', 'prod' FROM generate_series(1, 2)",
          b"CREATE UNIQUE INDEX CONCURRENTLY zz_one_only ON dry_run_log ((1))"]


def test_check_and_the_drift_check_name_an_invalid_index(head_url: URL) -> None:
    command.check(head_url)  # at head, nothing to say
    with psycopg.connect(plain(head_url), autocommit=True) as conn:
        conn.execute(BROKEN[0])
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(BROKEN[1])
    assert validity(head_url, "zz_one_only") is False
    with pytest.raises(DriftDetected) as caught:
        command.check(head_url)
    lines = caught.value.differences  # autogenerate's own: an index the models lack
    assert any(line.startswith("index zz_one_only on dry_run_log is INVALID (")
               for line in lines), lines
    cli = CliRunner().invoke(main, ["check", "--url", full(head_url)])
    assert cli.exit_code != 0
    assert "index zz_one_only on dry_run_log is INVALID" in cli.output, cli.output
    answer = Runner.from_environment({"DATABASE_URL": full(head_url)}).handle(
        {"action": "drift"}, request_id="r")
    assert answer["drift"] is True, answer
    assert any("zz_one_only" in d for d in answer["differences"]), answer


def test_the_indexes_a_revision_creates_are_read_from_its_source(tmp_path: object) -> None:
    path = Path(str(tmp_path)) / "rev.py"
    path.write_text('op.execute("create index concurrently if not exists Ix_A on t (a)")\n'
                    'op.create_index(op.f("ix_b"), "t", ["b"])\n'
                    "op.create_index('ix_c', 't', ['c'], postgresql_concurrently=True)\n"
                    'op.execute("CREATE UNIQUE INDEX \\"ix_d\\" ON t (d)")\n')
    assert repair.created_by([str(path)]) == {"ix_a", "ix_b", "ix_c", "ix_d"}
    rendered = ["CREATE INDEX CONCURRENTLY zz_built ON t (a);\n\nCOMMIT;"]
    assert repair.created_by([str(path)], rendered) == {"ix_a", "ix_b", "ix_c", "ix_d",
                                                       "zz_built"}
