"""A failure injected after each revision's first statement leaves the previous revision.

The failure is a real database error, raised right after the revision's first statement
(real DDL) ran, whichever operation sent it (``op.execute``, ``op.add_column``, ...): every
revision, the shipped ones and any added since, is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic.ddl.impl import DefaultImpl
from alembic.operations import Operations
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import MigrationFailed
from alquimista_schema.runtime import audit, locking
from alquimista_schema.schema import introspect
from tests.support.revisions import REVISIONS

# Rows present before each revision runs (a revision added since needs none).
SEED = {
    "lead_ingestion": [],
    "017": ["INSERT INTO leads (lead_id_externo, origem_arquivo, origem_aba) "
            "VALUES ('f.xlsx:2', 'f.xlsx', 'A')"],
    "018": ["INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
            "VALUES (gen_random_uuid(), 'email', 'seed')"],
    "019": ["INSERT INTO lead_telefones (lead_id, telefone) SELECT lead_id, '+55' FROM leads"],
    "020": ["INSERT INTO lead_emails (lead_id, email, email_principal) "
            "SELECT lead_id, 'a@x.com', true FROM leads"],
}
ROWS = """SELECT coalesce((SELECT count(*) FROM leads), -1) || '/'
          || coalesce((SELECT count(*) FROM dry_run_log), -1)"""


def _rows(url: URL) -> str:
    with connect(url) as conn:
        has = conn.execute(text("SELECT to_regclass('dry_run_log') IS NOT NULL AND "
                                "to_regclass('leads') IS NOT NULL")).scalar()
        return str(conn.execute(text(ROWS)).scalar()) if has else "-"


def _inject_through_alembic(revision: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    calls = {"n": 0}
    original: Callable[..., Any] = DefaultImpl._exec

    def failing(self: DefaultImpl, construct: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        result = original(self, construct, *args, **kwargs)
        if calls["n"] == 1:
            original(self, "SELECT 1/0")  # a real database error, after real DDL
        return result

    monkeypatch.setattr(DefaultImpl, "_exec", failing)

    def check() -> None:
        assert calls["n"] == 1  # it failed right after its first statement

    return check


@pytest.mark.parametrize("index", range(len(REVISIONS)), ids=REVISIONS)
def test_failure_after_the_first_statement(empty_url: URL, index: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    revision = REVISIONS[index]
    previous = REVISIONS[index - 1] if index else None
    if previous:
        command.upgrade(empty_url, previous)
    with connect(empty_url) as conn:
        for statement in SEED.get(revision, []):
            conn.execute(text(statement))
        conn.commit()
        before = introspect.snapshot(conn)
    rows_before = _rows(empty_url)

    check = _inject_through_alembic(revision, monkeypatch)
    with pytest.raises(MigrationFailed, match=f"revision {revision} failed and was rolled "
                                              "back: division by zero") as caught:
        command.upgrade(empty_url, revision, run=command.Run(request_id=f"inject-{revision}"))
    check()
    assert caught.value.revision == revision
    monkeypatch.undo()

    assert command.current(empty_url) == previous
    with connect(empty_url) as conn:
        assert introspect.snapshot(conn) == before  # no new objects
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND objid = (:k & x'ffffffff'::bigint)::oid"),
                            {"k": locking.LOCK_KEY}).scalar()
        assert held == 0  # the lock was released
        [row] = [r for r in audit.entries(conn) if r["request_id"] == f"inject-{revision}"]
    assert _rows(empty_url) == rows_before
    assert (row["outcome"], row["error_code"]) == ("error", "MIGRATION_FAILED")
    assert row["from_revision"] == row["to_revision"] == previous

    result = command.upgrade(empty_url, revision)  # the next run succeeds
    assert [a.revision for a in result.applied] == [revision]


def test_a_non_database_exception_is_a_failure_too(empty_url: URL,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    original: Callable[..., Any] = Operations.execute

    def broken(self: Operations, sqltext: Any, *args: Any, **kwargs: Any) -> Any:
        original(self, sqltext, *args, **kwargs)
        raise ValueError("bug in a data migration")

    monkeypatch.setattr(Operations, "execute", broken)
    with pytest.raises(MigrationFailed, match="ValueError: bug in a data migration"):
        command.upgrade(empty_url, "lead_ingestion", run=command.Run())
    monkeypatch.undo()
    assert command.current(empty_url) is None
    with connect(empty_url) as conn:
        assert conn.execute(text("SELECT to_regclass('leads')")).scalar() is None
        [row] = audit.entries(conn)
    assert row["error_code"] == "MIGRATION_FAILED"
