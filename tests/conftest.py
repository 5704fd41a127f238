"""One PostgreSQL server per test session, template databases, a fresh copy per test.

The server is the package's own local database (``devdb``) in a temporary folder,
so it starts the same way as root (CI) and as an ordinary user. pytest-postgresql
then clones a template database for every test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

from alquimista_schema import migrate
from alquimista_schema.devdb import DevDatabase

LEGACY = Path(__file__).parent / "legacy"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[URL]:
    """Start a throwaway PostgreSQL; yield the URL of its maintenance database."""
    root = Path(tempfile.mkdtemp(prefix="alq-test-pg-"))
    server = DevDatabase(root, dbname="postgres")
    try:
        yield server.start()
    finally:
        server.remove()
        shutil.rmtree(root, ignore_errors=True)


def url_for(server: URL, dbname: str) -> URL:
    return server.set(database=dbname)


def _loader(server: URL, revision: str | None, sql_files: list[str]) -> Callable[..., None]:
    def load(*, dbname: str, **_: Any) -> None:
        for name in sql_files:
            with psycopg.connect(url_for(server, dbname).render_as_string(
                    hide_password=False).replace("+psycopg2", "")) as conn:
                conn.execute((LEGACY / name).read_text().encode())
        if revision is not None:
            migrate.upgrade(url_for(server, dbname), revision)
    return load


def _template(request: pytest.FixtureRequest, server: URL, name: str,
              load: Callable[..., None]) -> Iterator[NoopExecutor]:
    assert server.host
    assert server.port
    assert server.username
    executor = NoopExecutor(host=server.host, port=server.port, user=server.username,
                            options="", dbname=name, password=server.password)
    janitor = DatabaseJanitor(user=server.username or "", host=server.host or "",
                              port=server.port or 5432, dbname=executor.template_dbname,
                              as_template=True, password=server.password)
    with janitor:
        janitor.load(load)
        yield executor


@pytest.fixture(scope="session")
def pg_empty_proc(request: pytest.FixtureRequest, pg_server: URL) -> Iterator[NoopExecutor]:
    yield from _template(request, pg_server, "t_empty", lambda **_: None)


@pytest.fixture(scope="session")
def pg_head_proc(request: pytest.FixtureRequest, pg_server: URL) -> Iterator[NoopExecutor]:
    yield from _template(request, pg_server, "t_head", _loader(pg_server, "head", []))


@pytest.fixture(scope="session")
def pg_legacy_proc(request: pytest.FixtureRequest, pg_server: URL) -> Iterator[NoopExecutor]:
    """A database built by the legacy SQL files (no alembic_version)."""
    yield from _template(request, pg_server, "t_legacy",
                         _loader(pg_server, None, ["ingestion.sql", "017_dry_run_log.sql"]))


empty_db = factories.postgresql("pg_empty_proc")
head_db = factories.postgresql("pg_head_proc")
legacy_db = factories.postgresql("pg_legacy_proc")


@pytest.fixture
def empty_url(pg_server: URL, empty_db: psycopg.Connection[Any]) -> URL:
    """URL of a fresh, empty database."""
    return url_for(pg_server, empty_db.info.dbname)


@pytest.fixture
def head_url(pg_server: URL, head_db: psycopg.Connection[Any]) -> URL:
    """URL of a fresh database at head."""
    return url_for(pg_server, head_db.info.dbname)


@pytest.fixture
def legacy_url(pg_server: URL, legacy_db: psycopg.Connection[Any]) -> URL:
    """URL of a fresh database built by the legacy SQL files."""
    return url_for(pg_server, legacy_db.info.dbname)


@pytest.fixture
def secret_free_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DATABASE_URL from the developer's shell leaks into a test."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
