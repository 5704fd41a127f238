"""A revision that leaves its transaction is never misreported (issue 31).

``op.execute("ROLLBACK")`` mid-revision silently dropped its first half, and the revision
was recorded and checksummed as applied; after a raw ``COMMIT`` psycopg2 does not notice
the server left the transaction, so every later statement (the version row included)
committed on its own, and a failure after an ``autocommit_block`` said "failed and was
rolled back" while what ran before it stayed. Now the run stops at the statement that ends
the transaction, records nothing of it, and every failure names what stayed committed.
Through every door (``door``, by name), from an empty database over the package's
revisions and tests/corpus (whose c13 is an autocommit block that succeeds, recorded as
applied like any other).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import ledger
from tests.support.doors import Door
from tests.support.revisions import scratch_revision

BASE = "c13"  # the corpus's head (tests/corpus)


AFTER = scratch_revision("zz_after", "zz_leaves", "CREATE TABLE zz_after (i int)",
                         "DROP TABLE zz_after", "Runs after it.")

# name: (upgrade body, tables that must stay, words the failure must say, the statements
# the Lambda's answer lists as committed)
CASES = {
    "rollback": (
        '    op.execute("CREATE TABLE zz_first (i int)")\n'
        '    op.execute("ROLLBACK")\n'
        '    op.execute("CREATE TABLE zz_second (i int)")',
        [], ["ended its own transaction (ROLLBACK)", "was rolled back",
             "not recorded as applied", f"recorded at {BASE}", "autocommit_block"], []),
    "rollback inside one string": (
        '    op.execute("CREATE TABLE zz_first (i int); ROLLBACK; "\n'
        '               "CREATE TABLE zz_second (i int)")\n'
        '    op.execute("CREATE TABLE zz_third (i int)")',
        ["zz_second"], ["ended its own transaction (ROLLBACK)", "was rolled back",
                        "what followed it in the same statement stayed"],
        ["CREATE TABLE zz_second (i int)"]),
    "commit": (
        '    op.execute("CREATE TABLE zz_first (i int)")\n'
        '    op.execute("COMMIT")\n'
        '    op.execute("CREATE TABLE zz_second (i int)")',
        ["zz_first"], ["ended its own transaction (COMMIT)", "stayed committed",
                       "CREATE TABLE zz_first (i int)", "not recorded as applied"],
        ["CREATE TABLE zz_first (i int)", "COMMIT"]),
    "commit inside one string": (
        '    op.execute("CREATE TABLE zz_first (i int); COMMIT; "\n'
        '               "CREATE TABLE zz_second (i int)")\n'
        '    op.execute("CREATE TABLE zz_third (i int)")',
        ["zz_first", "zz_second"], ["ended its own transaction (COMMIT)", "stayed committed"],
        ["CREATE TABLE zz_first (i int)", "COMMIT", "CREATE TABLE zz_second (i int)"]),
    # The server is never seen idle below: the next transaction is open at once.
    "commit and chain": (
        '    op.execute("CREATE TABLE zz_first (i int)")\n'
        '    op.execute("COMMIT AND CHAIN")\n'
        '    op.execute("CREATE TABLE zz_second (i int)")',
        ["zz_first"], ["ended its own transaction (COMMIT AND CHAIN)", "stayed committed",
                       "the transaction it began after that was rolled back"],
        ["CREATE TABLE zz_first (i int)", "COMMIT AND CHAIN"]),
    "rollback and chain": (
        '    op.execute("CREATE TABLE zz_first (i int)")\n'
        '    op.execute("ROLLBACK AND CHAIN")\n'
        '    op.execute("CREATE TABLE zz_second (i int)")',
        [], ["ended its own transaction (ROLLBACK AND CHAIN)", "was rolled back",
             "the transaction it began after that was rolled back"], []),
    "commit then begin inside one string": (
        '    op.execute("CREATE TABLE zz_first (i int); COMMIT; BEGIN; "\n'
        '               "CREATE TABLE zz_second (i int)")\n'
        '    op.execute("CREATE TABLE zz_third (i int)")',
        ["zz_first"], ["ended its own transaction (COMMIT)", "stayed committed",
                       "the transaction it began after that was rolled back"],
        ["CREATE TABLE zz_first (i int)", "COMMIT"]),
    "failure after an autocommit block": (
        '    op.execute("CREATE TABLE zz_first (i int)")\n'
        '    with op.get_context().autocommit_block():\n'
        '        op.execute("CREATE INDEX CONCURRENTLY zz_first_i ON zz_first (i)")\n'
        '    op.execute("CREATE TABLE zz_second (i int)")\n'
        '    op.execute("SELECT 1 / 0")',
        ["zz_first"], ["except 2 statement(s) it had already committed",
                       "CREATE TABLE zz_first (i int)",
                       "CREATE INDEX CONCURRENTLY zz_first_i ON zz_first (i)",
                       "division by zero"],
        ["CREATE TABLE zz_first (i int)",
         "CREATE INDEX CONCURRENTLY zz_first_i ON zz_first (i)"]),
}


def tables(url: URL) -> list[str]:
    with connect(url) as conn:
        return list(conn.execute(text(
            "SELECT relname FROM pg_class WHERE relname LIKE 'zz\\_%' AND relkind = 'r' "
            "ORDER BY relname")).scalars())


def state(url: URL) -> tuple[list[str], list[str]]:
    """alembic_version's rows and the revisions with a recorded checksum."""
    with connect(url) as conn:
        versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        recorded = list(conn.execute(text(
            f"SELECT revision FROM {ledger.TABLE} WHERE revision LIKE 'zz%'")).scalars())
    return versions, recorded


@pytest.mark.parametrize("case", CASES)
def test_a_revision_that_leaves_its_transaction_is_told_as_it_is_at_every_door(
        door: Door, empty_url: URL, case: str) -> None:
    body, stay, words, committed = CASES[case]
    (door.folder / "versions" / "zz_leaves.py").write_text(
        scratch_revision("zz_leaves", BASE, body, doc="Leaves its transaction."))
    (door.folder / "versions" / "zz_after.py").write_text(AFTER)
    done = door.run("upgrade", empty_url, "head")
    assert not done.ok, done.output
    flat = " ".join(done.output.split())
    for word in words:
        assert word in flat, (word, done.output)
    if case != "failure after an autocommit block":
        assert "failed and was rolled back" not in flat, done.output
    assert tables(empty_url) == stay  # nothing ran after the statement that left
    assert state(empty_url) == ([BASE], [])  # at the revision before, nothing recorded
    if door.name == "lambda":
        assert done.answer["error_code"] == "MIGRATION_FAILED", done.answer
        assert done.answer["to_revision"] == BASE, done.answer
        assert done.answer.get("committed", []) == committed, done.answer
