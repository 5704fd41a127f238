"""A run killed with SIGKILL mid-revision: its statement does not outlive it (issue 31).

The killed run's work session went on holding its table lock until its statement ended
(35 s here; up to the statement timeout), while its migration lock, on another session,
was released at once: an immediate re-run took the free lock and failed after
lock_timeout, blaming "traffic" for what was its own orphan. Now every work session has
``client_connection_check_interval``, so the server ends the orphan about a second after
its client dies, and a run that finds one waits for it. Real signals, real processes,
through every door.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psycopg
import psycopg2
import pytest
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect
from alquimista_schema.errors import LockTimeout
from alquimista_schema.runtime import audit, locking
from tests.support.doors import Door
from tests.support.helpers import plain, signalled
from tests.support.revisions import scratch_revision

SLEEPER = scratch_revision(
    "zz_sleeper", "c13", ["LOCK TABLE dry_run_log IN ACCESS EXCLUSIVE MODE",
                          "SELECT pg_sleep(60) WHERE to_regclass('zz_awake') IS NULL"],
    doc="Holds dry_run_log while it sleeps, unless told not to.")


def _sleeping(url: URL) -> list[int]:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(
            b"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' "
            b"AND state = 'active'").fetchall()]


def _await_sleeper(run: subprocess.Popen[str], url: URL) -> None:
    """Until the run's revision is sleeping in the database (the run still alive)."""
    ends = time.monotonic() + 60
    while not _sleeping(url):
        assert run.poll() is None, run.communicate()[0]
        assert time.monotonic() < ends, "the sleeper never started"
        time.sleep(0.1)


def test_a_rerun_after_kill_9_waits_for_the_orphan_and_succeeds_at_every_door(
        door: Door, empty_url: URL) -> None:
    (door.folder / "versions" / "zz_sleeper.py").write_text(SLEEPER)
    killed = door.popen("upgrade", empty_url, "head")
    try:
        _await_sleeper(killed, empty_url)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate()  # reaps it and closes its pipe
    with psycopg.connect(plain(empty_url), autocommit=True) as conn:
        conn.execute(b"CREATE TABLE zz_awake ()")  # the re-run's sleeper does not sleep
    began = time.monotonic()
    rerun = door.run("upgrade", empty_url, "head")
    took = time.monotonic() - began
    assert rerun.ok, rerun.output
    assert "traffic" not in rerun.output
    assert _sleeping(empty_url) == []
    assert took < 30, took  # not the orphan's 60 s
    # the killed run left a true record: running (never finished), and how far it got
    with connect(empty_url) as conn:
        done, killed_row = audit.entries(conn, limit=2)
    assert (done["outcome"], done["to_revision"]) == ("success", "zz_sleeper")
    assert killed_row["outcome"] == audit.RUNNING
    assert killed_row["to_revision"] == "c13"
    assert killed_row["applied"][-1]["revision"] == "c13"


def test_an_orphan_that_does_not_end_is_named_never_blamed_on_traffic(head_url: URL) -> None:
    with psycopg.connect(plain(head_url), application_name="alquimista-schema/req-x") as held:
        held.execute(b"LOCK TABLE dry_run_log IN SHARE ROW EXCLUSIVE MODE")
        pid = held.info.backend_pid
        lock_conn = psycopg2.connect(plain(head_url))
        try:
            with pytest.raises(LockTimeout) as caught:
                locking.await_orphans(lock_conn, wait_seconds=0.5)
        finally:
            lock_conn.close()
    said = str(caught.value)
    assert said.startswith(f"an earlier run's session still holds ShareRowExclusiveLock on "
                           f"dry_run_log (pid {pid}, application_name 'alquimista-schema/"
                           "req-x', transaction open "), said
    assert f"SELECT pg_terminate_backend({pid})" in said
    assert "traffic" not in said


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_cancels_the_statement_and_ends_with_a_final_row_at_every_door(
        door: Door, empty_url: URL, signum: signal.Signals) -> None:
    (door.folder / "versions" / "zz_sleeper.py").write_text(SLEEPER)
    running = door.popen("upgrade", empty_url, "head")
    output, took = signalled(running, signum, lambda: _await_sleeper(running, empty_url))
    assert running.returncode != 0, output
    assert took < 10, (took, output)  # not the sleeper's 60 s
    assert f"interrupted by {signum.name} during revision zz_sleeper" in output, output
    assert _sleeping(empty_url) == []
    with connect(empty_url) as conn:
        [row] = audit.entries(conn, limit=1)
    assert (row["outcome"], row["error_code"], row["to_revision"]) == (
        "error", "INTERRUPTED", "c13")
