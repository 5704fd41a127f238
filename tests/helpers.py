"""What the tests share that is not a fixture: the watched passwords, URLs, secrets.

``conftest.py`` holds the fixtures and the leak hook; it imports these from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL

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
