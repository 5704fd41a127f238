"""One PostgreSQL server per test session, template databases, a fresh copy per test.

The server is the package's own local database (``devdb``) in a temporary folder,
so it starts the same way as root (CI) and as an ordinary user. pytest-postgresql
then clones a template database for every test.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.local import DevDatabase
from alquimista_schema.script import directory
from tests.helpers import (
    LEAK_WATCH,
    MIGRATOR,
    MIGRATOR_PASSWORD,
    TLS,
    Invoke,
    leaks,
    plain,
    url_for,
)

LEGACY = Path(__file__).parent / "legacy"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured stdout, stderr or log shows a watched password."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    captured = "\n".join(content for _, content in report.sections)
    found = leaks(captured)
    if found and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"secret leaked into captured output ({report.when}): {found}"


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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Secrets Manager served by moto's server over HTTP, as boto3 really calls it."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Any:
    """Point boto3 at the local endpoint the way it reads it: from the environment."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    return boto3.client("secretsmanager")


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections and never says a word (a silent host)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def make_secret(aws: Any) -> Callable[..., str]:
    def make(value: dict[str, Any] | str) -> str:
        name = f"alquimista/test/{uuid.uuid4().hex[:8]}"
        body = value if isinstance(value, str) else json.dumps(value)
        return str(aws.create_secret(Name=name, SecretString=body)["ARN"])
    return make


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, aws: Any, tls: TLS) -> Invoke:
    """Call the real handler as Lambda does: a fresh container, then warm invocations."""
    import lambda_entry.handler as entry

    monkeypatch.setattr(entry, "_runner", None)
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "ENVIRONMENT", "LOCK_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)

    def call(event: Any, *, secret: str | None = None, remaining_ms: int = 300_000,
             env: dict[str, str] | None = None) -> dict[str, Any]:
        if secret is not None:
            monkeypatch.setenv("DB_SECRET_ARN", secret)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        if env:
            monkeypatch.setattr(entry, "_runner", None)  # new configuration: a new container
        ends = time.monotonic() + remaining_ms / 1000
        context = SimpleNamespace(
            aws_request_id=f"req-{uuid.uuid4().hex[:8]}",
            get_remaining_time_in_millis=lambda: int((ends - time.monotonic()) * 1000))
        answer = entry.handler(event, context)
        json.dumps(answer)  # always serialisable
        print("ANSWER", json.dumps(answer))  # scanned for leaked secrets like any output
        return answer
    return call




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
