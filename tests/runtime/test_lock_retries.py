"""A revision that cannot get its table lock is tried again, and its blocker is named
(issue 29).

A reader holding ``dry_run_log`` (``LOCK ... IN ACCESS SHARE MODE`` in an open
transaction, application_name ``zz-reader``) stands in the way of a revision that alters
the table (ACCESS EXCLUSIVE). With ``lock_timeout`` at 1 s, a reader that lets go after a
few seconds no longer fails the upgrade: the revision is rolled back, tried again at that
revision, and applied; one that never lets go ends the run with LOCK_TIMEOUT after the
attempts allowed, the database at the revision before. Either way the reader is named:
pid, user, application_name, client, state, how long its transaction is open, the lock
it holds on which table, and its statement's first keyword only. Through every door
(``door``, by name), against a real PostgreSQL; the blocker is a real second session.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import LockTimeout, MigrationFailed
from alquimista_schema.runtime import audit, lockwaits
from alquimista_schema.runtime.run import Run
from tests.support.doors import Door
from tests.support.helpers import plain, released_after, wait_until_waited_for
from tests.support.revisions import scratch_revision

ALTERS = scratch_revision("zz_alters", "c13", "ALTER TABLE dry_run_log ADD COLUMN zz_note text",
                          "ALTER TABLE dry_run_log DROP COLUMN zz_note",
                          "Alters dry_run_log: needs ACCESS EXCLUSIVE.")

FAST = {"ALQUIMISTA_LOCK_TIMEOUT": "1s"}


@pytest.fixture
def reader(head_url: URL) -> Iterator[tuple[psycopg.Connection[Any], int]]:
    """A session holding dry_run_log in ACCESS SHARE mode, and its pid."""
    conn = psycopg.connect(plain(head_url))
    conn.execute("SET application_name = 'zz-reader'")
    conn.execute("LOCK TABLE dry_run_log IN ACCESS SHARE MODE")
    conn.execute("SELECT count(*) FROM dry_run_log WHERE false")
    pid = conn.info.backend_pid
    try:
        yield conn, pid
    finally:
        conn.close()


def let_go_once_waited_for(conn: psycopg.Connection[Any], url: URL) -> None:
    """Release the reader 1.5 s after a session is first seen waiting for dry_run_log:
    past the first attempt's 1 s lock_timeout, within the retries (however long the
    door takes to get there)."""
    wait_until_waited_for(url, "dry_run_log", poll=0.05)
    time.sleep(1.5)
    conn.rollback()


def has_column(url: URL) -> bool:
    with connect(url) as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'dry_run_log' "
            "AND column_name = 'zz_note'")).scalar())


def last_row(url: URL) -> dict[str, Any]:
    with connect(url) as conn:
        [row] = audit.entries(conn, limit=1)
    return row


def test_a_reader_that_lets_go_is_waited_out_and_named_at_every_door(
        door: Door, head_url: URL, reader: tuple[psycopg.Connection[Any], int]) -> None:
    conn, pid = reader
    (door.folder / "versions" / "zz_alters.py").write_text(ALTERS)
    releasing = threading.Thread(target=let_go_once_waited_for, args=(conn, head_url))
    releasing.start()
    try:
        done = door.run("upgrade", head_url, "head", env=FAST)
    finally:
        releasing.join(timeout=120)
    assert done.ok, done.output
    assert has_column(head_url)
    flat = " ".join(done.output.split())
    assert f"blocked by pid {pid}" in flat, done.output
    assert "application_name 'zz-reader'" in flat, done.output
    assert "AccessShareLock on dry_run_log" in flat, done.output
    row = last_row(head_url)
    assert (row["outcome"], row["to_revision"]) == ("success", "zz_alters"), row
    assert row["attempts"], row
    assert {a["revision"] for a in row["attempts"]} == {"zz_alters"}
    assert all(a["sqlstate"] == "55P03" for a in row["attempts"])
    assert pid in {b["pid"] for a in row["attempts"] for b in a["blockers"]}
    if door.name == "lambda":
        assert done.answer["status"] == "success", done.answer


def test_a_reader_that_never_lets_go_ends_in_lock_timeout_named_at_every_door(
        door: Door, head_url: URL, reader: tuple[psycopg.Connection[Any], int]) -> None:
    _, pid = reader
    (door.folder / "versions" / "zz_alters.py").write_text(ALTERS)
    began = time.monotonic()
    done = door.run("upgrade", head_url, "head", env={**FAST, "LOCK_RETRIES": "2"})
    took = time.monotonic() - began
    assert not done.ok, done.output
    flat = " ".join(done.output.split())
    assert "after 3 attempt(s)" in flat, done.output
    assert f"blocked by pid {pid}" in flat, done.output
    assert "application_name 'zz-reader'" in flat, done.output
    assert "last statement SELECT" in flat, done.output  # its first keyword, never its text
    assert "WHERE false" not in flat, done.output
    assert not has_column(head_url)
    row = last_row(head_url)
    assert (row["outcome"], row["error_code"], row["to_revision"]) == (
        "error", "LOCK_TIMEOUT", "c13"), row
    assert [a["attempt"] for a in row["attempts"]] == [1, 2, 3]
    # 3 lock timeouts of 1 s and 2 backoffs of at most 1 s and 2 s, plus the runs
    assert took < 60, took
    if door.name == "lambda":
        assert done.answer["error_code"] == "LOCK_TIMEOUT", done.answer
        assert any(f"pid {pid}" in line for line in done.answer["blockers"]), done.answer


def test_an_attempt_the_deadline_cannot_hold_is_never_started(
        corpus_scripts: Any, head_url: URL, reader: tuple[psycopg.Connection[Any], int]
        ) -> None:
    """20 s left before the deadline (10 s of them the margin), 20 retries allowed: the
    run stops with LOCK_TIMEOUT within the deadline, the attempts counted, nothing of the
    revision applied."""
    (corpus_scripts / "versions" / "zz_alters.py").write_text(ALTERS)  # in use: a fixture
    began = time.monotonic()
    run = Run(lock_timeout="1s", lock_retries=20, deadline=began + 20, margin=10)
    with pytest.raises(LockTimeout) as caught:
        command.upgrade(head_url, "head", run=run)
    took = time.monotonic() - began
    assert took < 10.5, took  # within the deadline's margin
    message = str(caught.value)
    assert "too little time left for another" in message, message
    assert f"pid {reader[1]}" in message
    assert command.current(head_url) == "c13"
    attempts = caught.value.progress.attempts  # type: ignore[attr-defined]
    assert 2 <= len(attempts) < 20, attempts


def test_the_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    import random

    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (12, 30.0)]:
        for _ in range(50):
            wait = lockwaits.backoff(attempt, rng)
            assert full / 2 <= wait <= full, (attempt, wait)


def test_other_errors_are_never_retried(corpus_scripts: Any, head_url: URL) -> None:
    (corpus_scripts / "versions" / "zz_alters.py").write_text(
        scratch_revision("zz_alters", "c13", "SELECT 1 / 0", "SELECT 1"))
    with pytest.raises(MigrationFailed, match="division by zero") as caught:
        command.upgrade(head_url, "head", run=Run(lock_retries=5))
    assert caught.value.progress.attempts == []  # type: ignore[attr-defined]
    assert command.current(head_url) == "c13"


FIRST = scratch_revision("zz_first", "c13", "CREATE TABLE zz_one (i int)", "DROP TABLE zz_one")
THIRD = scratch_revision("zz_third", "zz_alters", "CREATE TABLE zz_three (i int)",
                         "DROP TABLE zz_three")


def test_a_retry_of_a_relative_target_stops_where_the_first_attempt_would_have(
        corpus_scripts: Any, head_url: URL, reader: tuple[psycopg.Connection[Any], int]
        ) -> None:
    """``upgrade +2`` from c13: zz_first commits, zz_alters waits for the reader and is
    retried; the run ends at zz_alters (+2 from c13), never at zz_third (+2 from where
    the retry started)."""
    versions = corpus_scripts / "versions"
    (versions / "zz_first.py").write_text(FIRST)
    (versions / "zz_alters.py").write_text(scratch_revision(
        "zz_alters", "zz_first", "ALTER TABLE dry_run_log ADD COLUMN zz_note text",
        "ALTER TABLE dry_run_log DROP COLUMN zz_note"))
    (versions / "zz_third.py").write_text(THIRD)
    conn, _ = reader
    conn.rollback()  # let go while the corpus is applied
    command.upgrade(head_url, "c13")
    conn.execute("LOCK TABLE dry_run_log IN ACCESS SHARE MODE")
    with released_after(2.5, conn.rollback):
        result = command.upgrade(head_url, "+2", run=Run(lock_timeout="1s"))
    assert [a.revision for a in result.applied] == ["zz_first", "zz_alters"]
    assert result.attempts, result
    assert command.current(head_url) == "zz_alters"


CROSSES = scratch_revision(
    "zz_alters", "c13", ["ALTER TABLE dry_run_log ADD COLUMN zz_note text",
                         "ALTER TABLE zz_other ADD COLUMN n int"],
    "ALTER TABLE dry_run_log DROP COLUMN zz_note", "Takes dry_run_log, then zz_other.")


def deadlock_once_waited_for(url: URL, holding: threading.Event) -> None:
    """Hold zz_other; once the revision waits for it, read dry_run_log (which the revision
    holds): a real deadlock. This session's deadlock_timeout is long, so PostgreSQL's
    check fires first in the revision's session (1 s) and cancels the revision, not this;
    then this read is granted and the session lets go."""
    with psycopg.connect(plain(url)) as conn:
        conn.execute("SET application_name = 'zz-crosser'")
        conn.execute("SET deadlock_timeout = '60s'")
        conn.execute("LOCK TABLE zz_other IN ACCESS SHARE MODE")
        holding.set()
        wait_until_waited_for(url, "zz_other", poll=0.02)
        conn.execute("SELECT count(*) FROM dry_run_log")
        conn.rollback()


def test_a_real_deadlock_is_retried_at_its_revision_at_every_door(
        door: Door, head_url: URL) -> None:
    """The revision takes dry_run_log, then waits for zz_other, which a second session
    holds while it waits for dry_run_log: PostgreSQL ends the revision with 40P01. It is
    rolled back, tried again once the other session has let go, and applied."""
    with psycopg.connect(plain(head_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS zz_other (i int)")
    (door.folder / "versions" / "zz_alters.py").write_text(CROSSES)
    holding = threading.Event()
    crossing = threading.Thread(target=deadlock_once_waited_for, args=(head_url, holding))
    crossing.start()
    assert holding.wait(30)
    try:
        done = door.run("upgrade", head_url, "head", env={"ALQUIMISTA_LOCK_TIMEOUT": "10s"})
    finally:
        crossing.join(timeout=120)
    assert done.ok, done.output
    assert has_column(head_url)
    row = last_row(head_url)
    assert (row["outcome"], row["to_revision"]) == ("success", "zz_alters"), row
    assert [a["sqlstate"] for a in row["attempts"]] == ["40P01"], row["attempts"]
    assert "zz-crosser" in str(row["attempts"][0]["blockers"]), row["attempts"]
    assert "deadlock (40P01) on attempt 1" in " ".join(done.output.split()), done.output
