"""One PostgreSQL server per test session, template databases, a fresh copy per test.

The server is the package's own local database (``connect/local.py``) in a temporary
folder, so it starts the same way as root (CI) and as an ordinary user. pytest-postgresql
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

from alquimista_schema import command
from alquimista_schema.connect.local import DevDatabase, checkout_dbname
from alquimista_schema.script import directory
from tests.support.helpers import LEAK_WATCH, MIGRATOR, MIGRATOR_PASSWORD, TLS, plain, url_for

LEGACY = Path(__file__).resolve().parents[1] / "legacy"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[DevDatabase]:
    """A throwaway PostgreSQL with TLS on and a migration role that must prove its password."""
    root = Path(tempfile.mkdtemp(prefix="alq-test-pg-"))
    server = DevDatabase(root, dbname="postgres")
    try:
        url = server.start()
        LEAK_WATCH.add(url.password or "")
        ca = server.enable_tls()
        other = ca.parent / "other.pem"
        with psycopg.connect(plain(url), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {MIGRATOR} LOGIN PASSWORD '{MIGRATOR_PASSWORD}'"
                         .encode())
        server.tls = TLS(ca, other)  # type: ignore[attr-defined]
        yield server
    finally:
        server.remove()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(pg_cluster: DevDatabase) -> URL:
    """URL of the test server's maintenance database (superuser)."""
    return pg_cluster.url("postgres")


@pytest.fixture(scope="session")
def tls(pg_cluster: DevDatabase) -> TLS:
    tls_: TLS = pg_cluster.tls  # type: ignore[attr-defined]
    return tls_


def _loader(server: URL, revision: str | None, sql_files: list[str]) -> Callable[..., None]:
    def load(*, dbname: str, **_: Any) -> None:
        for name in sql_files:
            with psycopg.connect(plain(url_for(server, dbname))) as conn:
                conn.execute((LEGACY / name).read_text().encode())
        if revision is not None:
            command.upgrade(url_for(server, dbname), revision)
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


@pytest.fixture
def migrator_url(pg_server: URL, empty_db: psycopg.Connection[Any]) -> URL:
    """A fresh empty database owned by the password-checked migration role."""
    name = empty_db.info.dbname
    with psycopg.connect(plain(pg_server), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {MIGRATOR}'.encode())
    with psycopg.connect(plain(url_for(pg_server, name)), autocommit=True) as conn:
        conn.execute(f"ALTER SCHEMA public OWNER TO {MIGRATOR}".encode())
    return url_for(pg_server, name).set(username=MIGRATOR, password=MIGRATOR_PASSWORD)


@pytest.fixture
def scratch_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    pg_head_proc: object) -> Path:
    """A copy of the script directory, so generated revisions do not touch the package.

    Depends on the head template so that it is built from the real revisions first.
    """
    target = tmp_path / "migrations"
    shutil.copytree(directory.SCRIPT_LOCATION, target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(directory, "SCRIPT_LOCATION", target)
    monkeypatch.setattr(directory, "VERSIONS_LOCATION", target / "versions")
    return target / "versions"


@pytest.fixture
def local_database(pg_cluster: DevDatabase, pg_server: URL,
                   monkeypatch: pytest.MonkeyPatch) -> URL:
    """What a door uses when given no URL: the local database (``connect/local.py``).

    Here the test server itself is that local database (ALQUIMISTA_DEVDB_DIR points at
    it), with a fresh database of this checkout's name, so nothing set means this one.
    """
    monkeypatch.setenv("ALQUIMISTA_DEVDB_DIR", str(pg_cluster.root))
    for name in ("ALQUIMISTA_DEVDB", "ALQUIMISTA_DEVDB_NAME", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # The doors pick this checkout's own database (connect/local.py): start each test
    # without it, whatever an earlier test or an earlier run left there.
    dbname = checkout_dbname().encode()
    with psycopg.connect(plain(pg_server), autocommit=True) as conn:
        conn.execute(b'DROP DATABASE IF EXISTS "' + dbname + b'" WITH (FORCE)')
    return DevDatabase(pg_cluster.root, dbname.decode()).start()
