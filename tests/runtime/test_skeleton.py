"""The run machinery against a real PostgreSQL: guards, lock, audit, budget, targets."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import (
    ConfigurationError,
    DatabaseUnreachable,
    DowngradeRefused,
    InvalidTarget,
    LockTimeout,
    MigrationFailed,
    UnknownRevision,
)
from alquimista_schema.runtime import audit, ledger, locking, probe
from tests.support.helpers import role
from tests.support.revisions import COUNT, HEAD, after, upto

NOWHERE = "postgresql://nobody@127.0.0.1:1/none"


def _audit_rows(url: URL) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return audit.entries(conn)


def _add_lead(url: URL) -> None:
    with connect(url) as conn:
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('a.xlsx:2', 'a.xlsx', 'Plan1')"))
        conn.commit()


@contextmanager
def _holding_the_lock(url: URL) -> Iterator[Any]:
    with connect(url, application_name="lock-holder") as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locking.LOCK_KEY})
        conn.commit()
        yield conn


# --- (3) destructive verbs ---------------------------------------------------------------

def test_prod_downgrade_without_confirm_changes_nothing(head_url: URL) -> None:
    before = len(_audit_rows(head_url))
    with pytest.raises(DowngradeRefused, match="confirm 020"):
        command.downgrade(head_url, "020", run=command.Run(environment="prod"))
    assert command.current(head_url) == HEAD
    assert len(_audit_rows(head_url)) == before
    done = command.downgrade(head_url, "020", run=command.Run(environment="prod"), confirm="020")
    assert done.to_revision == "020"


def test_a_downgrade_dropping_tables_with_rows_needs_confirm_everywhere(head_url: URL) -> None:
    _add_lead(head_url)
    before = len(_audit_rows(head_url))
    with pytest.raises(DowngradeRefused) as refused:
        command.downgrade(head_url, "base")
    message = str(refused.value)
    assert "leads" in message
    assert "dry_run_log" not in message  # only the tables holding rows
    assert "nothing was changed" in message
    assert "--confirm base" in message
    assert command.current(head_url) == HEAD
    assert len(_audit_rows(head_url)) == before
    with connect(head_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM leads")).scalar() == 1
    assert command.downgrade(head_url, "base", confirm="base").to_revision is None


def test_prod_stamp_purge_needs_confirm(head_url: URL) -> None:
    with pytest.raises(DowngradeRefused, match="stamp --purge refused in prod"):
        command.stamp(head_url, "017", purge=True, run=command.Run(environment="prod"))
    assert command.current(head_url) == HEAD
    done = command.stamp(head_url, "017", purge=True, run=command.Run(environment="prod"),
                         confirm="017")
    assert done.to_revision == "017"


# --- (5) a holder of another role -----------------------------------------------------------

def test_a_lock_held_by_another_role_is_lock_timeout_naming_its_pid(migrator_url: URL,
                                                                    pg_server: URL) -> None:
    dba = pg_server.set(database=migrator_url.database)
    with _holding_the_lock(dba) as holder:
        pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        with pytest.raises(LockTimeout, match=f"pid {pid} "):
            command.upgrade(migrator_url, "head", run=command.Run(lock_wait=0.5))
    assert command.current(migrator_url) is None


# --- (6) a failed audit write ------------------------------------------------------------------

def test_a_failed_audit_write_keeps_the_outcome_and_says_so(head_url: URL) -> None:
    # alembic_version and the checksums are the role's to write; the audit table is not.
    grants = ("GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version TO {role}",
              "GRANT SELECT, INSERT, UPDATE, DELETE ON alquimista_schema_checksums TO {role}")
    with role(head_url, "no_create", "no-create-pw-1", *grants) as url:
        done = command.stamp(url, "020")
        assert done.to_revision == "020"
        assert done.warnings == [
            "the audit row was not written: permission denied for table alquimista_schema_audit"]
        with pytest.raises(MigrationFailed, match="revision 021 failed") as failed:
            command.upgrade(url, "head")
        progress = failed.value.progress
        assert isinstance(progress, command.Result)
        assert "permission denied" in progress.warnings[0]
    with connect(head_url) as conn:
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
        assert held.scalar() == 0
    assert command.current(head_url) == "020"


def test_a_checksums_table_the_role_may_not_write_is_one_warning(
        migrator_url: URL, pg_server: URL) -> None:
    """Checked once when the run opens the ledger: the revisions apply, nothing is written
    to the table, one warning says why (never one per revision, never a failed revision)."""
    command.upgrade(migrator_url, "019")
    superuser = pg_server.set(database=migrator_url.database)
    with connect(superuser) as admin:
        admin.execute(text(f"REVOKE INSERT, UPDATE, DELETE ON {ledger.TABLE} FROM "
                           f"{migrator_url.username}"))
        admin.commit()
    done = command.upgrade(migrator_url, "head")
    assert [a.revision for a in done.applied] == after("019")
    assert done.warnings == [
        f"checksums were not recorded: this role may not write {ledger.TABLE} (grant "
        "SELECT, INSERT, UPDATE, DELETE on it)"]
    with connect(migrator_url) as conn:
        recorded = conn.execute(text(f"SELECT revision FROM {ledger.TABLE}")).scalars().all()
    assert sorted(recorded) == sorted(upto("019"))


# --- (7) PostgreSQL gone while waiting for the lock -----------------------------------------

def test_losing_the_server_while_waiting_for_the_lock_is_db_unreachable(
        empty_url: URL) -> None:
    request_id = uuid.uuid4().hex
    outcome: dict[str, BaseException] = {}

    def contender() -> None:
        try:
            command.upgrade(empty_url, "head", run=command.Run(request_id=request_id,
                                                               lock_wait=60))
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    with _holding_the_lock(empty_url) as holder:
        thread = threading.Thread(target=contender)
        thread.start()
        give_up = time.monotonic() + 30
        while True:  # the run's two connections: its migration's, and the waiting one
            pids = holder.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                {"a": f"alquimista-schema/{request_id}"}).scalars().all()
            holder.commit()
            if len(pids) == 2:
                break
            assert time.monotonic() < give_up, f"the contender never waited: {outcome}"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside its wait
        assert thread.is_alive(), outcome
        for pid in pids:  # the server goes away
            holder.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        holder.commit()
        thread.join(timeout=30)
    assert isinstance(outcome.get("error"), DatabaseUnreachable), outcome
    assert "waiting for the migration lock" in str(outcome["error"])


# --- (9) every wait inside the budget -----------------------------------------------------------

def test_the_fast_path_query_gives_up_within_its_statement_timeout(head_url: URL) -> None:
    probe.drop()
    with connect(head_url) as blocker:
        blocker.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
        began = time.monotonic()
        answer = probe.probe(head_url, connect_timeout=5, statement_timeout=0.5)
        assert time.monotonic() - began < 3
        assert answer.head is None
        blocker.rollback()
    probe.drop()


def test_the_fast_path_runs_once_and_hands_over_its_connection(
        empty_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    command.upgrade(empty_url, "017")
    answers: list[probe.Answer] = []
    real = probe.probe

    def spy(*args: Any, **kwargs: Any) -> probe.Answer:
        answers.append(real(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(probe, "probe", spy)
    assert command.upgrade(empty_url, "head").to_revision == HEAD
    [answer] = answers
    assert answer.head is None
    assert answer.connection is not None
    assert answer.connection.closed  # the full path used it, and closed it when done
    assert probe._cached == {}


def test_the_lock_wait_never_passes_the_deadline(empty_url: URL) -> None:
    with _holding_the_lock(empty_url):
        run = command.Run(lock_wait=60, deadline=time.monotonic() + 13.5, margin=10,
                          connect_budget=5)
        began = time.monotonic()
        with pytest.raises(LockTimeout):
            command.upgrade(empty_url, "head", run=run)
        assert time.monotonic() - began < 5


# --- (11) relative targets are checked before the lock -------------------------------------

@pytest.mark.parametrize(("start", "verb", "target", "reason"), [
    (None, "upgrade", "+99", f"base has {COUNT} revision(s) after it, not 99"),
    ("017", "upgrade", "017+9999", f"017 has {len(after('017'))} revision(s) after it, not 9999"),
    (None, "downgrade", "-1", "base has 0 revision(s) before it, not 1"),
])
def test_relative_targets_are_checked_before_the_lock_and_the_audit(
        empty_url: URL, start: str | None, verb: str, target: str, reason: str) -> None:
    if start:
        command.upgrade(empty_url, start)
    with _holding_the_lock(empty_url), pytest.raises(UnknownRevision, match=re.escape(reason)):
        getattr(command, verb)(empty_url, target, run=command.Run(lock_wait=5))
    assert [r for r in _audit_rows(empty_url) if r["outcome"] == "error"] == []
    assert command.current(empty_url) == start


def test_upgrade_minus_one_says_to_use_downgrade() -> None:
    with pytest.raises(InvalidTarget, match="upgrade -1 goes backwards: use downgrade -1"):
        command.upgrade(NOWHERE, "-1")


# --- (12) smaller ---------------------------------------------------------------------------------

def test_empty_targets_are_invalid_targets_not_assertions() -> None:
    with pytest.raises(InvalidTarget):
        command.upgrade(NOWHERE, "")
    with pytest.raises(InvalidTarget):
        command.stamp(NOWHERE, "", purge=True)
    with pytest.raises(InvalidTarget):
        command.downgrade(NOWHERE, "")


@pytest.mark.parametrize("rev_id", ["../../x", "a/b", "", "x" * 41, "017 x"])
def test_a_rev_id_that_is_not_a_plain_name_is_refused(scratch_scripts: Path,
                                                      rev_id: str) -> None:
    before = sorted(p.name for p in scratch_scripts.parent.parent.rglob("*"))
    with pytest.raises(ConfigurationError, match="--rev-id must be"):
        command.revision("escape", rev_id=rev_id)
    assert sorted(p.name for p in scratch_scripts.parent.parent.rglob("*")) == before
