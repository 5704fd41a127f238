"""Helpers for the run-machinery tests: other roles, the plain alembic command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.connect.database import connect

ROOT = Path(__file__).resolve().parents[1]
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


def alembic(*args: str, url: URL | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the plain ``alembic`` command from the repository root."""
    environ = {**os.environ, **env}
    environ.pop("DATABASE_URL", None)
    if url is not None:
        environ["DATABASE_URL"] = full(url)
    return subprocess.run([*ALEMBIC, *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=180)
