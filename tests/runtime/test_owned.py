"""The runner-owned tables' one writer (runtime/owned.py), on both kinds of connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import URL

from alquimista_schema.connect import sessions
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit, ledger, owned

TABLE = owned.Owned("zz_owned", {
    "id": "bigserial PRIMARY KEY",
    "note": "text",
    "data": "jsonb NOT NULL DEFAULT '[]'::jsonb",
    owned.STAMP: "timestamptz NOT NULL DEFAULT now()",
    "added": "text",
}, key="id", later=("added",))


@contextmanager
def driver(url: URL) -> Iterator[Any]:
    conn = sessions.connect(url, connect_timeout=5, application_name="test-owned")
    try:
        yield conn
    finally:
        sessions.close(conn)


@contextmanager
def alchemy(url: URL) -> Iterator[Any]:
    with connect(url) as conn:
        yield conn
        conn.commit()  # the SQLAlchemy transaction is its owner's to end


KINDS = {"psycopg2": driver, "sqlalchemy": alchemy}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_row_is_created_written_updated_read_and_deleted_the_same_way(
        kind: str, empty_url: URL) -> None:
    when = datetime(2026, 12, 7, tzinfo=UTC)
    with KINDS[kind](empty_url) as conn:
        assert owned.rows(conn, TABLE) == []  # absent: nothing, and nothing created
        assert not owned.present(conn, TABLE)
        assert owned.ensure(conn, TABLE, create=False) is False
        assert not owned.present(conn, TABLE)
        assert owned.ensure(conn, TABLE) is True
        key = owned.insert(conn, TABLE, {"note": "50% done", "data": [{"at": when}]})
        owned.update(conn, TABLE, key, {"note": "it's done", "data": [{"n": 1}]})
        [row] = owned.rows(conn, TABLE, "WHERE id = %(k)s", {"k": key})
        assert (row["note"], row["data"]) == ("it's done", [{"n": 1}])
        assert owned.writable(conn, TABLE)
        owned.delete(conn, TABLE, [key])
        assert owned.rows(conn, TABLE) == []


@pytest.mark.parametrize("kind", list(KINDS))
def test_json_values_keep_dates_as_text_and_an_upsert_replaces_by_key(
        kind: str, empty_url: URL) -> None:
    when = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    with KINDS[kind](empty_url) as conn:
        owned.ensure(conn, TABLE)
        owned.insert(conn, TABLE, {"id": 7, "note": "first", "data": [{"at": when}]})
        owned.insert(conn, TABLE, {"id": 7, "note": "second"}, upsert=True)
        [row] = owned.rows(conn, TABLE, columns=("id", "note", "data"))
    assert row == {"id": 7, "note": "second", "data": [{"at": str(when)}]}


def test_a_table_an_earlier_release_made_gains_the_later_columns_on_first_write(
        empty_url: URL) -> None:
    with driver(empty_url) as conn:
        sessions.fetch(conn, TABLE.ddl().replace(",\n    added text", ""))
        assert owned.rows(conn, TABLE, columns=("note", "added")) == []
        sessions.fetch(conn, "INSERT INTO zz_owned (note) VALUES ('before')")
        # Read before the write: only the columns it has.
        assert owned.rows(conn, TABLE, columns=("note", "added")) == [{"note": "before"}]
        owned.ensure(conn, TABLE)
        owned.insert(conn, TABLE, {"note": "after", "added": "yes"})
        found = owned.rows(conn, TABLE, "ORDER BY id", columns=("note", "added"))
    assert found == [{"note": "before", "added": None}, {"note": "after", "added": "yes"}]


def test_an_unknown_column_is_refused_before_any_sql() -> None:
    with pytest.raises(KeyError, match=r"zz_owned has no column \['nope'\]"):
        TABLE.bound({"note": "x", "nope": 1})


def test_the_audit_and_the_ledger_are_tables_of_the_one_kind() -> None:
    for table in (audit.AUDIT, ledger.LEDGER):
        assert owned.STAMP in table.columns
        assert table.key in table.columns
        assert set(table.later) <= set(table.columns)
        assert table.ddl().startswith(f"CREATE TABLE IF NOT EXISTS {table.name} (")
