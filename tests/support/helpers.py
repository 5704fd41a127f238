"""What the tests share that is not a fixture: watched passwords, URLs, secrets, roles,
the plain alembic command, and the rule for tools a machine may lack.

The fixtures are plugins beside this module (database.py, aws.py, leaks.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect

# Passwords the suite must never see in any output: checked after every test.
MIGRATOR = "migrator"
MIGRATOR_PASSWORD = "Mx7@q:rt/z%9?-alquimista-NEVER-LOG"
LEAK_WATCH: set[str] = {MIGRATOR_PASSWORD}


def leaks(text_: str) -> list[str]:
    """Return the watched passwords (raw or URL-encoded) that appear in ``text_``."""
    found = []
    for secret in LEAK_WATCH:
        forms = {secret, quote(secret, safe=""), quote_plus(secret)}
        if any(form in text_ for form in forms):
            found.append(secret[:3] + "...")
    return found



@dataclass(frozen=True)
class TLS:
    ca: Path
    """CA bundle that signed the server's certificate (for sslmode=verify-full)."""
    other_ca: Path
    """A CA that did not: verification against it must fail."""


def plain(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def url_for(server: URL, dbname: str) -> URL:
    return server.set(database=dbname)


Invoke = Callable[..., dict[str, Any]]


def secret_for(url: URL, **overrides: Any) -> dict[str, Any]:
    value = {"username": url.username, "password": url.password, "host": "localhost",
             "port": url.port, "dbname": url.database, "engine": "postgres"}
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not None}


# --- roles and the plain alembic command ---------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC = [sys.executable, "-c", "from alembic.config import main; main()"]

def full(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@contextmanager
def role(admin: URL, name: str, password: str, *grants: str) -> Iterator[URL]:
    """A login role of the database of ``admin`` (a superuser URL), dropped afterwards."""
    with connect(admin) as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{admin.database}" TO {name}'))
        for grant in grants:
            conn.execute(text(grant.format(role=name)))
        conn.commit()
    try:
        yield admin.set(username=name, password=password)
    finally:
        with connect(admin) as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": name})
            conn.execute(text(f"DROP OWNED BY {name}"))
            conn.execute(text(f"DROP ROLE {name}"))
            conn.commit()


def alembic(*args: str, url: URL | None = None, cwd: Path = ROOT,
            **env: str) -> subprocess.CompletedProcess[str]:
    """Run the plain ``alembic`` command from the repository root (or ``cwd``)."""
    environ = {**os.environ, **env}
    environ.pop("DATABASE_URL", None)
    if url is not None:
        environ["DATABASE_URL"] = full(url)
    return subprocess.run([*ALEMBIC, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=180)


# --- tools a machine may lack -----------------------------------------------------------


def missing(what: str, how: str) -> NoReturn:
    """Skip for ``what`` missing here, or fail under CI=true; ``how`` says how to get it."""
    message = f"{what} is not available here ({how})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}: CI must provide it", pytrace=False)
    pytest.skip(message)


@contextmanager
def released_after(seconds: float, release: Callable[[], object]) -> Iterator[None]:
    """Call ``release`` (a blocker's rollback) after ``seconds``, on a timer thread, while
    the block runs; a timer that has not fired when the block ends is cancelled."""
    timer = threading.Timer(seconds, release)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def wait_until_waited_for(url: URL, table: str, *, poll: float, within: float = 90) -> None:
    """Return once some session waits for a lock on ``table`` (at most ``within`` s)."""
    ends = time.monotonic() + within
    query = (b"SELECT count(*) FROM pg_locks WHERE relation = %s::regclass "
             b"AND NOT granted")
    with psycopg.connect(plain(url), autocommit=True) as watcher:
        while time.monotonic() < ends and not watcher.execute(
                query, (table,)).fetchone()[0]:  # type: ignore[index]
            time.sleep(poll)



def signalled(running: subprocess.Popen[str], signum: int,
              ready: Callable[[], object]) -> tuple[str, float]:
    """Once ``ready`` returns, send ``signum`` to ``running``; return its output and how long
    it took to end after the signal. A process that outlives the test is killed."""
    try:
        ready()
        began = time.monotonic()
        running.send_signal(signum)
        output, _ = running.communicate(timeout=30)
        return output, time.monotonic() - began
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
