"""A database error outside any revision is one line that names it, at every door (issue 31).

A role that cannot read ``alembic_version`` got a traceback from plain ``alembic`` and
"unexpected ProgrammingError ... (a bug)" from the CLI and the Lambda. Now: the object,
the privilege and what to grant, with its own code (``PERMISSION_DENIED``).
"""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL

from tests.support.doors import Door
from tests.support.helpers import LEAK_WATCH, leaks, plain

ROLE, PASSWORD = "zz_cannot_read", "Zz-cannot-read-9x"
LEAK_WATCH.add(PASSWORD)


def test_a_role_that_cannot_read_alembic_version_is_told_what_to_grant_at_every_door(
        door: Door, empty_url: URL) -> None:
    assert door.run("upgrade", empty_url, "head").ok
    with psycopg.connect(plain(empty_url), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}".encode())
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'".encode())
        conn.execute(f"REVOKE ALL ON alembic_version FROM {ROLE}".encode())
    try:
        done = door.run("upgrade", empty_url.set(username=ROLE, password=PASSWORD), "head")
        said = done.output + str(done.answer)
        assert not done.ok, said
        assert "Traceback" not in said, said
        assert "a bug" not in said, said
        assert "permission denied for table alembic_version" in said, said
        assert "GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version" in said, said
        if door.name == "lambda":
            assert done.answer["error_code"] == "PERMISSION_DENIED", done.answer
        assert not leaks(said)
    finally:
        with psycopg.connect(plain(empty_url), autocommit=True) as conn:
            conn.execute(b"DROP OWNED BY " + ROLE.encode())
            conn.execute(f"DROP ROLE {ROLE}".encode())
