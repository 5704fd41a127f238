"""The lock and effect table of runtime/effects.py, proven against the real server.

For each kind of statement, one statement of that kind runs on a real table (``zz_t``,
1,000 rows) in a transaction of its own, and the test observes what PostgreSQL did: the
strongest lock the session holds on the table (``pg_locks``), whether the table was
rewritten (its file node changed: ``pg_relation_filenode``) and whether it was read
(``pg_stat_get_xact_numscans``, this transaction's scans). A rewrite counts as what it
is; ``catalog`` means neither a rewrite nor a scan. ``CREATE INDEX CONCURRENTLY`` cannot
run in a transaction: its lock is observed from a second session while it waits.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from alquimista_schema.runtime import effects
from tests.support.helpers import plain

RANK = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
        "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]

SETUP = [
    "CREATE TABLE zz_p (i int PRIMARY KEY)",
    "INSERT INTO zz_p SELECT g FROM generate_series(1, 1000) g",
    "CREATE TABLE zz_t (i int, s text)",
    "INSERT INTO zz_t SELECT g, 'row ' || g FROM generate_series(1, 1000) g",
    "ALTER TABLE zz_t ADD CONSTRAINT zz_t_pending CHECK (i > 0) NOT VALID",
    "CREATE UNIQUE INDEX zz_t_s_key ON zz_t (s)",
    "ANALYZE zz_t",
    "CREATE TABLE zz_p2 AS SELECT g AS i FROM generate_series(1, 1000) g",
]

# kind -> a statement of that kind (its table: zz_t, or the one it creates); MORE: more
# statements of a kind already sampled
SAMPLES = {
    "create_index": "CREATE INDEX zz_t_i ON zz_t (i)",
    "create_table": "CREATE TABLE zz_new (i int)",
    "drop_table": "DROP TABLE zz_t",
    "validate_constraint": "ALTER TABLE zz_t VALIDATE CONSTRAINT zz_t_pending",
    "add_foreign_key_not_valid": "ALTER TABLE zz_t ADD CONSTRAINT zz_fk FOREIGN KEY (i) "
                                 "REFERENCES zz_p (i) NOT VALID",
    "add_foreign_key": "ALTER TABLE zz_t ADD CONSTRAINT zz_fk FOREIGN KEY (i) REFERENCES zz_p (i)",
    "add_check_not_valid": "ALTER TABLE zz_t ADD CONSTRAINT zz_c CHECK (i < 5000) NOT VALID",
    "add_check": "ALTER TABLE zz_t ADD CONSTRAINT zz_c CHECK (i < 5000)",
    "add_column_volatile_default": "ALTER TABLE zz_t ADD COLUMN u uuid DEFAULT gen_random_uuid()",
    "alter_column_type": "ALTER TABLE zz_t ALTER COLUMN i TYPE bigint",
    "set_not_null": "ALTER TABLE zz_t ALTER COLUMN i SET NOT NULL",
    "add_column": "ALTER TABLE zz_t ADD COLUMN n int DEFAULT 0",
    "drop_column": "ALTER TABLE zz_t DROP COLUMN s",
    "update": "UPDATE zz_t SET s = 'changed' WHERE i = 5",
    "delete": "DELETE FROM zz_t WHERE i = 5",
    "insert": "INSERT INTO zz_t VALUES (1001, 'new')",
    "comment_on_table": "COMMENT ON TABLE zz_t IS 'a comment'",
    "add_unique_or_primary_key": "ALTER TABLE zz_t ADD CONSTRAINT zz_u UNIQUE (i)",
    "add_unique_using_index": "ALTER TABLE zz_t ADD CONSTRAINT zz_uk UNIQUE USING INDEX zz_t_s_key",
}
MORE = [
    ("add_column_volatile_default", "ALTER TABLE zz_t ADD COLUMN sid bigserial"),
    ("add_column_volatile_default",
     "ALTER TABLE zz_t ADD COLUMN g int GENERATED ALWAYS AS (i * 2) STORED"),
    ("add_unique_or_primary_key", "ALTER TABLE zz_p2 ADD PRIMARY KEY (i)"),
]


@pytest.fixture
def session(empty_url: URL) -> Any:
    with psycopg.connect(plain(empty_url), autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement.encode())
        yield conn


def observe(conn: Any, statement: str, table: str) -> tuple[str | None, bool, bool]:
    """(strongest lock held on ``table``, rewritten, scanned) by ``statement``."""
    with conn.transaction(force_rollback=True):
        before = conn.execute(b"SELECT to_regclass(%s)::oid, pg_relation_filenode(to_regclass(%s)),"
                              b" pg_stat_get_xact_numscans(to_regclass(%s))",
                              (table, table, table)).fetchone()
        conn.execute(statement.encode())
        oid = before[0] or conn.execute(b"SELECT to_regclass(%s)::oid", (table,)).fetchone()[0]
        modes = [m for (m,) in conn.execute(
            b"SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = %s "
            b"AND granted", (oid,)).fetchall()]
        after = conn.execute(b"SELECT pg_relation_filenode(%s::regclass), "
                             b"pg_stat_get_xact_numscans(%s::regclass)", (oid, oid)).fetchone() \
            if conn.execute(b"SELECT to_regclass(%s)", (table,)).fetchone()[0] else (None, None)
    strongest = max(modes, key=RANK.index) if modes else None
    rewritten = before[1] is not None and after[0] is not None and after[0] != before[1]
    scanned = before[2] is not None and after[1] is not None and after[1] > before[2]
    return strongest, rewritten, scanned


@pytest.mark.parametrize(("kind", "statement"), [*SAMPLES.items(), *MORE])
def test_each_kind_takes_the_lock_and_has_the_effect_the_table_says(
        session: Any, kind: str, statement: str) -> None:
    found, table, lock, effect = effects.classify(statement)
    assert found == kind, (statement, found)
    lock_seen, rewritten, scanned = observe(session, statement, table or "")
    assert lock_seen == lock, (kind, lock_seen)
    if effect == effects.REWRITE:
        assert rewritten, kind
    elif effect == effects.SCAN:
        assert (scanned, rewritten) == (True, False), kind
    else:  # catalog, writes: the rows are never read nor the table rewritten
        assert (scanned, rewritten) == (False, False), kind


def test_a_concurrent_index_takes_share_update_exclusive_seen_while_it_waits(
        session: Any, empty_url: URL) -> None:
    statement = "CREATE INDEX CONCURRENTLY zz_t_s ON zz_t (s)"
    found, table, lock, effect = effects.classify(statement)
    assert (found, table, effect) == ("create_index_concurrently", "zz_t", effects.SCAN)
    with psycopg.connect(plain(empty_url)) as writer:  # an open write: the build waits for it
        writer.execute(b"INSERT INTO zz_t VALUES (1002, 'w')")
        builder = psycopg.connect(plain(empty_url), autocommit=True)
        pid = builder.info.backend_pid
        building = threading.Thread(target=builder.execute, args=(statement.encode(),))
        building.start()
        try:
            modes: list[str] = []
            ends = time.monotonic() + 20
            while not modes and time.monotonic() < ends:
                modes = [m for (m,) in session.execute(
                    b"SELECT mode FROM pg_locks WHERE pid = %s AND granted "
                    b"AND relation = 'zz_t'::regclass", (pid,)).fetchall()]
                time.sleep(0.05)
        finally:
            writer.rollback()
            building.join(timeout=30)
            builder.close()
    assert modes == [lock], modes


def test_unknown_statements_are_never_graded_safe() -> None:
    kind, _, lock, effect = effects.classify("CLUSTER zz_t USING zz_t_i")
    assert (kind, effect) == ("other", effects.UNKNOWN)
    assert effects.grade(lock, effect, None, None) == "caution"
    assert effects.classify("CREATE OR REPLACE VIEW v AS SELECT 1")[3] == effects.CATALOG


def test_a_quoted_table_is_looked_up_as_written(session: Any, empty_url: URL) -> None:
    from alquimista_schema.connect.database import connect

    session.execute(b'CREATE TABLE "Zz_Quoted" (i int)')
    session.execute(b'INSERT INTO "Zz_Quoted" SELECT g FROM generate_series(1, 500) g')
    session.execute(b'ANALYZE "Zz_Quoted"')
    with connect(empty_url) as conn:
        [found] = effects.of_revisions(conn, [("r", 'ALTER TABLE "Zz_Quoted" ADD COLUMN n int')])
    assert (found.table, found.rows) == ("Zz_Quoted", 500)


def test_a_statements_literals_are_never_shown() -> None:
    from alquimista_schema.runtime.transactions import shown

    assert shown("ALTER ROLE app PASSWORD 'hunter2' VALID UNTIL 'it''s'") == \
        "ALTER ROLE app PASSWORD '...' VALID UNTIL '...'"
    assert shown("SELECT E'a\\\\b', 1") == "SELECT '...', 1"


def test_statements_are_split_once_and_lose_only_their_comments() -> None:
    """effects.statements against sqlparse's own split + format(strip_comments), the way
    it was done before, on every shipped revision's offline SQL and on comments of both
    kinds; a comment's text inside a dollar-quoted body or a string stays."""
    import sqlparse

    from alquimista_schema import targets
    from alquimista_schema.runtime import planning, stepping
    from alquimista_schema.script import directory

    def oracle(sql: str) -> list[str]:
        parts = (sqlparse.format(p, strip_comments=True).strip().rstrip(";").strip()
                 for p in sqlparse.split(sql))
        return [" ".join(p.split()) for p in parts if p]

    script = directory.script_directory()
    steps = planning.route(script, targets.parsed("head", "up"), None, upgrade=True).steps
    rendered = [sql for _, sql in stepping.render_upgrades(steps)]
    mine = "ALTER TABLE t ADD COLUMN c int; -- why\n/* a\nblock */ SELECT '-- kept', $$ -- kept $$;"
    for sql in [*rendered, mine]:
        assert [" ".join(s.split()) for s in effects.statements(sql)] == oracle(sql)
    assert [" ".join(s.split()) for s in effects.statements(mine)] == [
        "ALTER TABLE t ADD COLUMN c int", "SELECT '-- kept', $$ -- kept $$"]
    assert sum(len(effects.statements(sql)) for sql in rendered) > 20  # it read them all
