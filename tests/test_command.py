"""Upgrades, downgrades and failures against a real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import InvalidTarget, LockTimeout, MigrationFailed, UnknownRevision
from alquimista_schema.schema import introspect
from tests.support.revisions import HEAD, REVISIONS, after

CHAIN = REVISIONS


def snap(url: URL) -> dict[str, Any]:
    with connect(url) as conn:
        return introspect.snapshot(conn)


def test_history_is_one_linear_chain_ending_at_head() -> None:
    assert [r.revision for r in command.history()] == CHAIN
    assert command.heads() == [HEAD]


def test_base_to_head_applies_every_revision_in_order(empty_url: URL) -> None:
    seen: list[str] = []
    result = command.upgrade(empty_url, "head", on_applied=lambda a: seen.append(a.revision))
    assert [a.revision for a in result.applied] == CHAIN == seen
    assert (result.from_revision, result.to_revision) == (None, HEAD)
    assert all(a.duration_ms >= 0 for a in result.applied)
    assert all(a.description for a in result.applied)
    assert command.current(empty_url) == HEAD


def test_upgrade_at_head_is_a_noop(head_url: URL) -> None:
    result = command.upgrade(head_url, "head")
    assert result.applied == []
    assert result.from_revision == result.to_revision == HEAD


@pytest.mark.parametrize("index", range(len(CHAIN)))
def test_each_revision_down_and_up_restores_the_schema_exactly(empty_url: URL,
                                                               index: int) -> None:
    """Downgrading revision N gives back exactly the schema of N-1, and N again after."""
    previous = CHAIN[index - 1] if index else "base"
    if index:
        command.upgrade(empty_url, previous)
    before = snap(empty_url)
    command.upgrade(empty_url, CHAIN[index])
    after = snap(empty_url)
    assert after != before
    command.downgrade(empty_url, previous)
    assert snap(empty_url) == before
    assert command.current(empty_url) == (None if previous == "base" else previous)
    command.upgrade(empty_url, CHAIN[index])
    assert snap(empty_url) == after


def test_017_is_addressable_by_its_legacy_number(empty_url: URL) -> None:
    result = command.upgrade(empty_url, "017")
    assert [a.revision for a in result.applied] == ["lead_ingestion", "017"]
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT to_regclass('dry_run_log') IS NOT NULL")).scalar()
        assert conn.execute(text("SELECT count(*) FROM pg_constraint "
                                 "WHERE conname LIKE 'ck_%'")).scalar() == 0


def test_relative_steps(empty_url: URL) -> None:
    command.upgrade(empty_url, "+2")
    assert command.current(empty_url) == "017"
    command.downgrade(empty_url, "-1")
    assert command.current(empty_url) == "lead_ingestion"


def test_unknown_target_is_refused_before_connecting() -> None:
    with pytest.raises(UnknownRevision, match="'999'"):
        command.upgrade("postgresql://nobody@127.0.0.1:1/none", "999")


def _insert_decision(conn: Any, canal: str) -> None:
    conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
                      "VALUES (:t, :c, 'teste')"), {"t": uuid.uuid4(), "c": canal})


def test_rows_survive_the_later_revisions_both_ways(empty_url: URL) -> None:
    command.upgrade(empty_url, "017")
    with connect(empty_url) as conn:
        _insert_decision(conn, "whatsapp")
        conn.execute(text("INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
                          "VALUES ('a.xlsx:2', 'a.xlsx', 'Plan1')"))
        conn.commit()
    command.upgrade(empty_url, "head")
    command.downgrade(empty_url, "017")
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM dry_run_log")).scalar() == 1
        assert conn.execute(text("SELECT status FROM leads")).scalar() == "novo"


def test_a_failing_revision_leaves_the_revision_before_it(empty_url: URL) -> None:
    """A legacy row that breaks a CHECK: 018 applies (NOT VALID), 019 fails and rolls back."""
    command.upgrade(empty_url, "017")
    with connect(empty_url) as conn:
        _insert_decision(conn, "sms")
        conn.commit()
    applied: list[str] = []
    with pytest.raises(MigrationFailed) as caught:
        command.upgrade(empty_url, "head", on_applied=lambda a: applied.append(a.revision))
    assert caught.value.revision == "019"
    assert "ck_dry_run_log_canal_decidido" in str(caught.value)
    assert applied == ["018"]
    assert command.current(empty_url) == "018"
    with connect(empty_url) as conn:
        validated = conn.execute(text(
            "SELECT bool_or(convalidated) FROM pg_constraint WHERE conname LIKE 'ck_%'")).scalar()
        assert validated is False
        assert conn.execute(text("SELECT count(*) FROM dry_run_log")).scalar() == 1
        conn.execute(text("UPDATE dry_run_log SET canal_decidido = 'none'"))
        conn.commit()
    assert command.upgrade(empty_url, "head").to_revision == HEAD


def test_lock_timeout_fails_cleanly_instead_of_queueing(empty_url: URL) -> None:
    """A long transaction holding dry_run_log: 018 gives up after lock_timeout, nothing
    changes (retries off; tests/runtime/test_lock_retries.py has them on)."""
    command.upgrade(empty_url, "017")
    before = snap(empty_url)
    with connect(empty_url) as holder:
        holder.execute(text("LOCK TABLE dry_run_log IN ACCESS SHARE MODE"))
        with pytest.raises(LockTimeout, match=r"lock_timeout .*after 1 attempt") as caught:
            command.upgrade(empty_url, "018", run=command.Run(lock_timeout="200ms",
                                                               lock_retries=0))
        holder.rollback()
    assert caught.value.revision == "018"
    assert command.current(empty_url) == "017"
    assert snap(empty_url) == before


def test_timeouts_are_set_for_migrations_and_restored(head_url: URL) -> None:
    from alquimista_schema.script import directory

    seen: dict[str, str] = {}
    with connect(head_url) as conn:
        original = conn.execute(text("SHOW lock_timeout")).scalar()
        conn.commit()

        def probe(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
            seen["lock"] = ctx.connection.execute(text("SHOW lock_timeout")).scalar()
            seen["statement"] = ctx.connection.execute(text("SHOW statement_timeout")).scalar()

        from alembic import command as alembic_command

        config = directory.make_config(connection=conn, on_version_apply=[probe],
                                     lock_timeout="3s", statement_timeout="2min")
        alembic_command.downgrade(config, "-1")
        assert seen == {"lock": "3s", "statement": "2min"}
        assert conn.execute(text("SHOW lock_timeout")).scalar() == original


def test_default_timeouts_show_in_offline_sql() -> None:
    out = command.sql("017")
    assert "SET lock_timeout = '5s'" in out
    assert "SET statement_timeout = '15min'" in out
    assert out.count("BEGIN;") == 2  # one transaction per revision


def test_offline_sql_moves_backwards_too() -> None:
    out = command.sql("head:017")
    assert "VALIDATE" not in out
    assert "DROP CONSTRAINT ck_leads_status" in out
    assert "UPDATE alembic_version SET version_num='017'" in out


def test_stamp_records_without_running(empty_url: URL) -> None:
    result = command.stamp(empty_url, "017")
    assert (result.from_revision, result.to_revision) == (None, "017")
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT to_regclass('dry_run_log')")).scalar() is None


@pytest.mark.parametrize(("target", "error"), [
    ("head+1", InvalidTarget), ("base-1", InvalidTarget),  # never well formed (targets.py)
    (f"017+{len(after('017')) + 1}", UnknownRevision),  # one past the head
    ("lead_ingestion-1", UnknownRevision),
])
def test_relative_targets_past_the_ends_are_refused(empty_url: URL, target: str,
                                                    error: type[Exception]) -> None:
    command.upgrade(empty_url, "017")
    with pytest.raises(error):
        command.upgrade(empty_url, target)
    assert command.current(empty_url) == "017"


SHARED = """
    SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto') || '/'
           || (to_regprocedure('public.update_updated_at_column()') IS NOT NULL)::text
"""


def test_downgrades_leave_the_shared_objects(empty_url: URL) -> None:
    """pgcrypto and update_updated_at_column() are the platform's too: made if missing, kept."""
    command.upgrade(empty_url, "head")
    with connect(empty_url) as conn:
        assert conn.execute(text(SHARED)).scalar() == "1/true"
    command.downgrade(empty_url, "base")
    with connect(empty_url) as conn:
        assert conn.execute(text(SHARED)).scalar() == "1/true"
        assert conn.execute(text("SELECT to_regclass('leads')")).scalar() is None
    assert command.upgrade(empty_url, "head").to_revision == HEAD  # and it is reused


def test_020_repairs_and_its_downgrade_restores_the_broken_legacy_function(
        empty_url: URL) -> None:
    command.upgrade(empty_url, "019")
    call = "SELECT count(*) FROM get_leads_para_disparo()"
    seed = ["INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
            "VALUES ('f.xlsx:2', 'f.xlsx', 'A')",
            "INSERT INTO lead_emails (lead_id, email, email_principal) "
            "SELECT lead_id, e, true FROM leads, (VALUES ('a@x.com'), ('b@x.com')) v(e)"]
    with connect(empty_url) as conn:
        for statement in seed:
            conn.execute(text(statement))
        conn.commit()
        with pytest.raises(DBAPIError, match="structure of query does not match"):
            conn.execute(text(call))
    command.upgrade(empty_url, "020")
    with connect(empty_url) as conn:
        assert conn.execute(text(call)).scalar() == 1  # one row, not one per principal
    command.downgrade(empty_url, "019")
    with connect(empty_url) as conn, pytest.raises(DBAPIError, match="does not match"):
        conn.execute(text(call))
