"""What one revision SETs never reaches the next one of the same run (issue 31).

A revision that runs ``SET search_path TO other, public`` made the next one create its
table in ``other``; ``SET lock_timeout = 0; SET statement_timeout = 0`` switched the safety
timeouts (and the Lambda's deadline cap) off for every later revision. Each revision now
starts from the run's session settings. Through every door (``door``, by name).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import durations
from alquimista_schema.connect.database import connect
from tests.support.doors import Door
from tests.support.revisions import scratch_revision

# After the corpus's head (c13, tests/corpus): the first SETs, the second records.
SETS = scratch_revision(
    "zz_sets", "c13", ["CREATE SCHEMA IF NOT EXISTS zz_other",
                       "SET search_path TO zz_other, public", "SET lock_timeout = 0",
                       "SET statement_timeout = 0"],
    "DROP SCHEMA zz_other", "Leaves its session changed.")

RECORDS = scratch_revision(
    "zz_records", "zz_sets",
    "CREATE TABLE zz_seen AS SELECT current_schema() AS schema_name, "
    "current_setting('lock_timeout') AS lock_timeout, "
    "current_setting('statement_timeout') AS statement_timeout",
    "DROP TABLE zz_seen", "Records what it starts from.")


def test_a_revisions_set_never_reaches_the_next_revision_at_every_door(
        door: Door, empty_url: URL) -> None:
    (door.folder / "versions" / "zz_sets.py").write_text(SETS)
    (door.folder / "versions" / "zz_records.py").write_text(RECORDS)
    done = door.run("upgrade", empty_url, "head")
    assert done.ok, done.output
    with connect(empty_url) as conn:
        where = conn.execute(text(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'zz_seen'")).scalars().all()
        assert where == ["public"]
        schema, lock, statement = conn.execute(text(
            "SELECT schema_name, lock_timeout, statement_timeout FROM public.zz_seen")).one()
    assert schema == "public"
    assert durations.seconds(lock) == durations.seconds(durations.DEFAULT_LOCK_TIMEOUT)
    # the configured bound, or (the Lambda) the deadline's cap under it: never 0
    assert 0 < durations.seconds(statement) <= \
        durations.seconds(durations.DEFAULT_STATEMENT_TIMEOUT), statement
