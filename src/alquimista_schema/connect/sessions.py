"""psycopg2 connections without SQLAlchemy: the no-op probe, the lock, the audit row.

Light on purpose: the no-op never imports SQLAlchemy, and the lock and audit
connection is a driver connection.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import psycopg2

# A peer that vanishes mid-query (a failover, a dropped route) is noticed within about a
# minute: TCP keepalives after 30 s of silence, every 10 s, three misses; and data unacked
# for 60 s. libpq's defaults leave it to the kernel (about two hours), past any Lambda.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3, "tcp_user_timeout": 60_000}


def connect(url: Any, *, connect_timeout: float, application_name: str) -> Any:
    """Open an autocommit psycopg2 connection to ``url`` (a Dsn, or a URL's fields).

    Errors are the driver's: the no-op probe then lets the run skeleton answer, which reports them.
    """
    # The URL's options first, ours over them (as SQLAlchemy's connect_args win). libpq
    # reads a connect_timeout of 0 as "wait forever" and rounds 1 up to 2: a real bound.
    params = {**dict(url.query), "host": url.host, "port": url.port or 5432,
              "user": url.username, "password": url.password, "dbname": url.database,
              "connect_timeout": max(2, math.ceil(connect_timeout)),
              "application_name": application_name[:63], **KEEPALIVES}
    conn = psycopg2.connect(**{k: v for k, v in params.items() if v is not None})
    conn.autocommit = True
    return conn


def fetch(conn: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a psycopg2 connection and end its transaction; return the rows."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
    except BaseException:
        if not conn.closed and not conn.autocommit:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
        raise
    if not conn.autocommit:
        conn.commit()
    return rows


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own error: SQLAlchemy's DBAPIError wraps it as ``orig``."""
    return getattr(exc, "orig", None) or exc


def first_line(exc: BaseException) -> str:
    """The first line of a driver error (of either kind)."""
    orig = driver_error(exc)
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
        conn.close()
