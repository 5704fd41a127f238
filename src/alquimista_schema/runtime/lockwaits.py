"""A revision that waits for a table lock: who blocks it, and whether to try it again.

After ``lock_timeout`` the wait is gone, and so is what caused it: the blockers are seen
only while the revision waits. A watcher thread, on a session of its own (opened when the
revisions start), asks ``pg_blocking_pids`` for the work session every ``POLL`` seconds
once a revision has run ``SEEN_AFTER`` seconds and keeps the last blockers it saw in the revision.
It never reads their query text beyond its first keyword: a statement can carry data.

A revision that fails on ``lock_timeout`` (55P03) or a deadlock (40P01) is retried at that
revision, after an exponential backoff with jitter, up to ``Run.lock_retries`` times; an
attempt that the time left cannot hold (the backoff plus one ``lock_timeout``) is never
started. Other errors are never retried.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from alquimista_schema import durations
from alquimista_schema.connect.sessions import first_line
from alquimista_schema.runtime.run import Run

log = logging.getLogger(__name__)

# the SQLSTATEs a revision is tried again after, and what a user knows them as
RETRYABLE = {"55P03": "lock_timeout", "40P01": "deadlock"}
POLL = 0.25
SEEN_AFTER = 0.25
BACKOFF_FIRST, BACKOFF_MOST = 1.0, 30.0

_BLOCKERS = """
SELECT a.pid, a.usename::text, a.application_name, host(a.client_addr), a.state,
       round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::float8,
       substring(ltrim(a.query) FROM '^[A-Za-z]+'),
       COALESCE(
       (SELECT string_agg(DISTINCT l.mode || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END
                          || ' on ' || l.relation::regclass::text, ', ')
          FROM pg_locks l
         WHERE l.pid = a.pid AND l.relation IN (
               SELECT w.relation FROM pg_locks w WHERE w.pid = %(pid)s AND NOT w.granted)),
       -- no table: the revision waits for the session's transaction to end (CREATE INDEX
       -- CONCURRENTLY waits so for every older transaction: a virtualxid wait)
       (SELECT 'its open transaction (' || min(w.locktype) || ' wait)'
          FROM pg_locks w
         WHERE w.pid = %(pid)s AND NOT w.granted
           AND w.locktype IN ('virtualxid', 'transactionid')))
  FROM pg_stat_activity a
 WHERE a.pid = ANY(pg_blocking_pids(%(pid)s))
 ORDER BY a.pid
"""


@dataclass(frozen=True)
class Blocker:
    """A session that held up a revision, as it was seen during the wait."""

    pid: int
    user: str | None
    application_name: str | None
    client: str | None
    state: str | None
    transaction_seconds: float | None
    last_statement: str | None
    """Its query's first keyword only (SELECT, UPDATE, ...): never its text."""
    locks: str | None
    """The locks it holds (or waits for) on the table the revision waits for; or, when the
    revision waits for its transaction to end, ``its open transaction (virtualxid wait)``."""

    def describe(self) -> str:
        """One line: enough to find the session and end it."""
        parts = [f"pid {self.pid}", f"user {self.user!r}",
                 f"application_name {self.application_name or ''!r}",
                 f"client {self.client or 'local socket'}", f"{self.state or 'unknown state'}"]
        if self.transaction_seconds is not None:
            parts.append(f"transaction open {self.transaction_seconds:.1f}s")
        if self.locks:
            parts.append(f"holding {self.locks}")
        if self.last_statement:
            parts.append(f"last statement {self.last_statement}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def blockers_of(conn: Any, pid: int) -> list[Blocker]:
    """Who blocks backend ``pid`` now, read on psycopg2 connection ``conn`` (autocommit)."""
    with conn.cursor() as cur:
        cur.execute(_BLOCKERS, {"pid": pid})
        return [Blocker(*row) for row in cur.fetchall()]


@dataclass
class Watch:
    """The blockers of the work session, sampled while each revision runs."""

    open_session: Any
    """Returns a new psycopg2 connection to the database (called once, in the thread)."""
    pid: int
    revision: str | None = None
    started: float = 0.0
    seen: tuple[Blocker, ...] = ()
    """The last blockers seen during the current revision."""

    def begin(self, revision: str) -> None:
        self.revision, self.started, self.seen = revision, time.monotonic(), ()

    def end(self) -> None:
        self.revision = None

    def _run(self, stop: threading.Event) -> None:
        session = None
        try:
            # Opened at once: a session opened only when a wait begins can miss it.
            session = self.open_session()
            while not stop.wait(POLL):
                if self.revision is None or time.monotonic() - self.started < SEEN_AFTER:
                    continue
                found = tuple(blockers_of(session, self.pid))
                if found:
                    self.seen = found
        except Exception as exc:  # naming blockers is a courtesy: never fail the run for it
            log.info("blockers are not watched: %s", first_line(exc))
        finally:
            if session is not None:
                with contextlib.suppress(Exception):
                    session.close()


@contextmanager
def watching(open_session: Any, pid: int) -> Iterator[Watch]:
    """Sample ``pid``'s blockers in a thread while inside."""
    watch = Watch(open_session, pid)
    stop = threading.Event()
    thread = threading.Thread(target=watch._run, args=(stop,), name="alquimista-blockers",
                              daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(timeout=5)


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 1, 2, 4, ... up to 30, each with
    "equal jitter" (between half and all of it), so two runs do not retry in step."""
    full = min(BACKOFF_MOST, BACKOFF_FIRST * 2.0 ** (attempt - 1))
    share: float = (rng or random).random()
    return full * (0.5 + 0.5 * share)


def fits(run: Run, wait: float) -> bool:
    """Whether the time left holds the wait and one more ``lock_timeout``."""
    remaining = run.remaining()
    if remaining is None:
        return True
    lock = durations.seconds(run.lock_timeout or durations.DEFAULT_LOCK_TIMEOUT)
    return remaining > wait + lock + 1.0
