"""Whether a revision kept to its transaction, and what of it stayed committed.

Each revision runs in a transaction of its own: a failure rolls all of it back, a success
commits it with its version row and checksum. A revision can leave that transaction in
two ways. Alembic's ``autocommit_block`` is the supported one: it commits what ran
before it, runs its statements outside any transaction, then opens a new one. A raw
``op.execute("COMMIT")`` (or ``ROLLBACK``, ``END``, ``PREPARE TRANSACTION``) is not:
psycopg2 does not notice the server left the transaction, so every later statement,
Alembic's version row included, commits on its own, and a failure can no longer be
rolled back. The witness watches the work connection's statements (libpq's transaction
status after each, no round trip; and, since ``COMMIT AND CHAIN`` or ``COMMIT; BEGIN``
leave the server in a new transaction, never idle, the text of a statement that may hold
one): it stops a revision at the statement that ended its transaction, before anything
else runs outside it, and it knows which statements stayed committed, so a failure says
so instead of "rolled back".
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
# A statement that ends the transaction (PostgreSQL's COMMIT, END, ROLLBACK, ABORT with
# their optional WORK/TRANSACTION, and PREPARE TRANSACTION); not ROLLBACK TO a savepoint,
# nor COMMIT/ROLLBACK PREPARED (refused inside a transaction, so a plain failure). AND
# CHAIN begins the next transaction at once: the server is never seen idle.
_CONTROL = re.compile(
    r"^\s*(?:(?P<how>COMMIT|END|ROLLBACK|ABORT)"
    r"(?!(?:\s+(?:WORK|TRANSACTION))?\s+(?:TO|PREPARED)\b)(?:\s+(?:WORK|TRANSACTION))?"
    r"(?:\s+AND\s+(?P<no>NO\s+)?(?P<chain>CHAIN))?"
    r"|(?P<prepare>PREPARE\s+TRANSACTION))\b", re.I)
_BEGINS = re.compile(r"^\s*(?:BEGIN|START\s+TRANSACTION)\b", re.I)
# Cheap first look, so only a statement that may hold one is split (sqlparse).
_MAYBE = re.compile(r"\b(?:COMMIT|END|ROLLBACK|ABORT|PREPARE)\b", re.I)
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
            self._left(_ending(statement), statement)
        elif _MAYBE.search(statement) and (ending := _ending(statement)).how != "unknown":
            self._left(ending, statement)  # ended, then began anew (AND CHAIN, or a BEGIN)
        else:
            self.pending.append(shown(statement))

    def _committed(self, conn: Connection) -> None:
        if self.revision is not None:  # autocommit_block commits what ran before it
            self.committing, self.pending = self.committing + self.pending, []

    def _left(self, ending: Ending, statement: str) -> None:
        """The statement ended the revision's transaction: stop the revision here."""
        how = ending.how
        if how in _COMMITS:
            self.kept += [*self.pending, *map(shown, ending.upto), *map(shown, ending.after)]
            what = "what it ran before stayed committed: " + "; ".join(self.kept)
        elif how in _ROLLBACKS:
            what = "what it ran before was rolled back"
            self.kept += [shown(part) for part in ending.after]  # ran outside any transaction
            if self.kept:
                what += ", and what followed it in the same statement stayed: " + \
                    "; ".join(self.kept)
        else:
            what = ("whether what it ran before stayed committed is not known; look for: " +
                    "; ".join([*self.pending, shown(statement)]))
        if ending.began:
            what += "; the transaction it began after that was rolled back with it"
        self.pending = []
        label = f"{how} AND CHAIN" if ending.chained else how
        raise MigrationFailed(
            f"revision {self.revision} ended its own transaction ({label}) before it "
            f"finished, so it was stopped there and is not recorded as applied; {what}. The "
            f"database is recorded at {self.at or 'base'}. A revision must not run COMMIT or "
            "ROLLBACK: for a statement that cannot run inside a transaction, use "
            "op.get_context().autocommit_block()",
            revision=self.revision, committed=self.kept)


@dataclass(frozen=True)
class Ending:
    """The last command in a statement that ended the transaction, as the witness reads it."""

    how: str
    """COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, or ``unknown`` (none is there)."""
    upto: list[str] = field(default_factory=list)
    """The statement's parts up to that command, the command included."""
    after: list[str] = field(default_factory=list)
    """The parts after it that ran outside any transaction (so stayed): up to a BEGIN or
    START TRANSACTION, or none when the command chains the next transaction."""
    chained: bool = False
    began: bool = False
    """Whether a new transaction was open after it (AND CHAIN, or a later BEGIN)."""


def _ending(statement: str) -> Ending:
    """The last transaction-ending command in ``statement`` (one or several SQL statements),
    and what ran after it outside any transaction."""
    parts = [p.strip().rstrip(";").rstrip() for p in sqlparse.split(statement) if p.strip()]
    for index in range(len(parts) - 1, -1, -1):
        match = _CONTROL.match(parts[index])
        if match:
            how = " ".join((match["how"] or match["prepare"]).upper().split())
            chained = bool(match["chain"]) and not match["no"]
            later = parts[index + 1:]
            opened = next((i for i, p in enumerate(later) if _BEGINS.match(p)), None)
            outside = [] if chained else later[:opened]
            return Ending(how, parts[:index + 1], outside, chained,
                          chained or opened is not None)
    return Ending("unknown")


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
