"""Whether a revision kept to its transaction, and what of it stayed committed.

Each revision runs in a transaction of its own: a failure rolls all of it back, a success
commits it with its version row and checksum. A revision can leave that transaction in
two ways. Alembic's ``autocommit_block`` is the supported one: it commits what ran
before it, runs its statements outside any transaction, then opens a new one. A raw
``op.execute("COMMIT")`` (or ``ROLLBACK``, ``END``, ``PREPARE TRANSACTION``) is not:
psycopg2 does not notice the server left the transaction, so every later statement,
Alembic's version row included, commits on its own, and a failure can no longer be
rolled back. The witness watches the work connection's statements (libpq's transaction
status after each, no round trip): it stops a revision at the statement that ended its
transaction, before anything else runs outside it, and it knows which statements stayed
committed, so a failure says so instead of "rolled back".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlparse
from sqlalchemy import event
from sqlalchemy.engine import Connection

from alquimista_schema.errors import MigrationFailed

_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE: the server is in no transaction
_SHOWN = 100  # characters of each statement a message shows
_CONTROL = re.compile(r"^\s*(COMMIT|END|ROLLBACK|ABORT|PREPARE\s+TRANSACTION)\b", re.I)
_COMMITS = frozenset({"COMMIT", "END"})
_ROLLBACKS = frozenset({"ROLLBACK", "ABORT"})  # PREPARE TRANSACTION: neither, so "not known"


_LITERAL = re.compile(r"(?:\b[EeXxBbUu]&?)?'(?:[^']|'')*'")


def shown(statement: str) -> str:
    """A statement as a message shows it: one line, at most ``_SHOWN`` characters, each
    string literal masked (``'...'``): a value can be data, or a password."""
    line = _LITERAL.sub("'...'", " ".join(statement.split()))
    return line if len(line) <= _SHOWN else line[:_SHOWN - 3] + "..."


@dataclass
class Witness:
    """One run's watch over its work connection, one revision at a time."""

    conn: Connection
    revision: str | None = None
    """The revision running now (None: between revisions, nothing is watched)."""
    at: str | None = None
    """Where the database is recorded while it runs (the revision before)."""
    pending: list[str] = field(default_factory=list)
    """Its statements in the open transaction: rolled back if it fails."""
    kept: list[str] = field(default_factory=list)
    """Its statements already committed (before or inside an ``autocommit_block``)."""
    committing: list[str] = field(default_factory=list)
    """Statements whose COMMIT was asked for: SQLAlchemy says so before the driver commits,
    so they count as kept only once a statement runs after it (else the commit failed)."""

    def begin(self, revision: str, at: str | None) -> None:
        self.revision, self.at = revision, at
        self.pending, self.kept, self.committing = [], [], []

    def end(self) -> None:
        self.revision = None

    def caveat(self) -> str:
        """What a failed revision's message adds when not all of it was rolled back."""
        if not self.kept or self.revision is None:
            return ""
        return (f"; except {len(self.kept)} statement(s) it had already committed (an "
                "autocommit_block commits what ran before it, and each statement inside "
                "it), which stayed: " + "; ".join(self.kept))

    def _executed(self, conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        if self.revision is None:
            return
        self.kept, self.committing = self.kept + self.committing, []  # that commit held
        driver = cursor.connection
        if driver.autocommit:  # inside an autocommit_block: committed on its own
            self.kept.append(shown(statement))
        elif driver.info.transaction_status == _IDLE:
            self._left(statement)
        else:
            self.pending.append(shown(statement))

    def _committed(self, conn: Connection) -> None:
        if self.revision is not None:  # autocommit_block commits what ran before it
            self.committing, self.pending = self.committing + self.pending, []

    def _left(self, statement: str) -> None:
        """The statement ended the revision's transaction: stop the revision here."""
        how, after = _ending(statement)
        if how in _COMMITS:
            self.kept += [*self.pending, shown(statement)]
            what = "what it ran before stayed committed: " + "; ".join(self.kept)
        elif how in _ROLLBACKS:
            what = "what it ran before was rolled back"
            self.kept += [shown(part) for part in after]  # ran outside any transaction
            if self.kept:
                what += ", and what followed it in the same statement stayed: " + \
                    "; ".join(self.kept)
        else:
            what = ("whether what it ran before stayed committed is not known; look for: " +
                    "; ".join([*self.pending, shown(statement)]))
        self.pending = []
        raise MigrationFailed(
            f"revision {self.revision} ended its own transaction ({how}) before it finished, "
            f"so it was stopped there and is not recorded as applied; {what}. The database "
            f"is recorded at {self.at or 'base'}. A revision must not run COMMIT or ROLLBACK: "
            "for a statement that cannot run inside a transaction, use "
            "op.get_context().autocommit_block()",
            revision=self.revision, committed=self.kept)


def _ending(statement: str) -> tuple[str, list[str]]:
    """The last transaction-control command in ``statement`` (one or several SQL
    statements) and the statements after it; ("unknown", []) when none is there."""
    parts = [p for p in sqlparse.split(statement) if p.strip()]
    for index in range(len(parts) - 1, -1, -1):
        match = _CONTROL.match(parts[index])
        if match:
            return " ".join(match.group(1).upper().split()), parts[index + 1:]
    return "unknown", []


@contextmanager
def watching(conn: Connection) -> Iterator[Witness]:
    """Watch ``conn``'s statements while inside (the events are removed on the way out)."""
    witness = Witness(conn)
    event.listen(conn, "after_cursor_execute", witness._executed)
    event.listen(conn, "commit", witness._committed)
    try:
        yield witness
    finally:
        event.remove(conn, "after_cursor_execute", witness._executed)
        event.remove(conn, "commit", witness._committed)
