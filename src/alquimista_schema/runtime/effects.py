"""What each pending statement will do to the live table: its lock, whether it rewrites
or scans the table or touches only the catalog, and how big that table is now.

The statements are Alembic's offline SQL of the pending revisions (for review, as
``plan`` shows it; never replayed). Each is matched against ``KINDS``, PostgreSQL's facts
for that kind of statement: the lock it takes on the table, and its effect. The table is
proven against the real server by tests/runtime/test_effects.py, which runs one
statement of each kind on a real table and observes ``pg_locks``, the relation's file
node (a rewrite changes it) and the transaction's scan count. A statement that matches no
kind is ``unknown``: never guessed safe.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlparse.engine import FilterStack
from sqlparse.tokens import Comment

from alquimista_schema.errors import BusyTableRefused
from alquimista_schema.runtime import stepping
from alquimista_schema.runtime.transactions import shown

CATALOG, SCAN, REWRITE, WRITES, UNKNOWN = "catalog", "scan", "rewrite", "writes", "unknown"
# Locks that conflict with ROW EXCLUSIVE: writers wait while they are held.
BLOCKS_WRITES = frozenset({"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
                           "AccessExclusiveLock"})
LARGE_ROWS = 100_000
LARGE_BYTES = 64 * 1024 * 1024

_T = r"(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<table>[\w.\"]+)"
_ALTER = rf"^ALTER\s+TABLE\s+{_T}\s+"
_NAMED = r"ADD\s+(?:CONSTRAINT\s+\S+\s+)?"
_VOLATILE = r"(?:gen_random_uuid|uuid_generate_v[14]|random|clock_timestamp|timeofday|nextval)\s*\("
# A new column whose every existing row needs its own value: the table is rewritten.
_FILLED = rf"(?:\bDEFAULT\b.*{_VOLATILE}|\b(?:small|big)?serial\b|\bGENERATED\b)"

# kind -> (pattern, lock on the table, effect); the first match wins: specific first.
KINDS: dict[str, tuple[str, str, str]] = {
    "create_index_concurrently": (
        rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+.*?\bON\s+{_T}",
        "ShareUpdateExclusiveLock", SCAN),
    "create_index": (rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+.*?\bON\s+{_T}", "ShareLock", SCAN),
    "create_table": (rf"^CREATE\s+TABLE\s+{_T}", "AccessExclusiveLock", CATALOG),
    "drop_table": (rf"^DROP\s+TABLE\s+{_T}", "AccessExclusiveLock", CATALOG),
    "validate_constraint": (rf"{_ALTER}VALIDATE\s+CONSTRAINT", "ShareUpdateExclusiveLock",
                            SCAN),
    "add_foreign_key_not_valid": (rf"{_ALTER}{_NAMED}FOREIGN\s+KEY\b.*\bNOT\s+VALID\b",
                                  "ShareRowExclusiveLock", CATALOG),
    "add_foreign_key": (rf"{_ALTER}{_NAMED}FOREIGN\s+KEY\b", "ShareRowExclusiveLock", SCAN),
    "add_check_not_valid": (rf"{_ALTER}{_NAMED}CHECK\b.*\bNOT\s+VALID\b",
                            "AccessExclusiveLock", CATALOG),
    "add_check": (rf"{_ALTER}{_NAMED}CHECK\b", "AccessExclusiveLock", SCAN),
    "add_unique_using_index": (rf"{_ALTER}{_NAMED}(?:UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX\b",
                               "AccessExclusiveLock", CATALOG),
    "add_unique_or_primary_key": (rf"{_ALTER}{_NAMED}(?:UNIQUE|PRIMARY\s+KEY|EXCLUDE)\b",
                                  "AccessExclusiveLock", SCAN),
    "add_column_volatile_default": (rf"{_ALTER}ADD\s+(?!CONSTRAINT\b)(?:COLUMN\s+)?.*{_FILLED}",
                                    "AccessExclusiveLock", REWRITE),
    "alter_column_type": (rf"{_ALTER}ALTER\s+(?:COLUMN\s+)?\S+\s+(?:SET\s+DATA\s+)?TYPE\b",
                          "AccessExclusiveLock", REWRITE),
    "set_not_null": (rf"{_ALTER}ALTER\s+(?:COLUMN\s+)?\S+\s+SET\s+NOT\s+NULL",
                     "AccessExclusiveLock", SCAN),
    "add_column": (rf"{_ALTER}ADD\s+(?!CONSTRAINT\b)(?:COLUMN\s+)?", "AccessExclusiveLock",
                   CATALOG),
    "drop_column": (rf"{_ALTER}DROP\s+(?:COLUMN\s+)?", "AccessExclusiveLock", CATALOG),
    "update": (r"^UPDATE\s+(?:ONLY\s+)?(?P<table>[\w.\"]+)", "RowExclusiveLock", SCAN),
    "delete": (r"^DELETE\s+FROM\s+(?:ONLY\s+)?(?P<table>[\w.\"]+)", "RowExclusiveLock", SCAN),
    "insert": (r"^INSERT\s+INTO\s+(?P<table>[\w.\"]+)", "RowExclusiveLock", WRITES),
    "comment_on_table": (r"^COMMENT\s+ON\s+TABLE\s+(?P<table>[\w.\"]+)",
                         "ShareUpdateExclusiveLock", CATALOG),
}
_COMPILED = {kind: re.compile(pattern, re.IGNORECASE | re.DOTALL)
             for kind, (pattern, _, _) in KINDS.items()}
# What the offline rendering adds around the revisions: not theirs, not shown.
_OWN = re.compile(r"^(?:BEGIN|COMMIT|SET\s|.*\balembic_version\b)", re.IGNORECASE | re.DOTALL)
NOT_RENDERED = "-- not rendered"  # runtime/stepping.render_upgrades
WAIVER = "BUSY_TABLE_WAIVER"
"""A revision's module-level reason why its DANGER statements are safe here."""


@dataclass(frozen=True)
class Effect:
    """One pending statement, and what it does to its table as the table is now."""

    revision: str
    statement: str
    kind: str
    table: str | None
    lock: str | None
    effect: str
    rows: int | None = None
    """The table's estimated rows now (``pg_class.reltuples``; None: unknown, or new)."""
    bytes: int | None = None
    grade: str = "ok"
    """``ok``, ``caution`` (scans or rewrites a large table without blocking writes, or an
    unknown statement) or ``danger`` (blocks writes while it scans or rewrites a large
    table)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """How ``plan`` shows it."""
        size = "" if self.rows is None else f", {self.rows:,} rows, {_size(self.bytes)}"
        on = f" on {self.table}" if self.table else ""
        return (f"  {self.grade.upper():<7} {self.effect:<8} {self.lock or '-'}{on}{size}: "
                f"{self.statement}")


def classify(statement: str) -> tuple[str, str | None, str | None, str]:
    """(kind, table, lock, effect) of one SQL statement."""
    if statement.startswith(NOT_RENDERED):
        return "other", None, None, UNKNOWN
    flat = " ".join(statement.split())
    for kind, pattern in _COMPILED.items():
        found = pattern.match(flat)
        if found:
            _, lock, effect = KINDS[kind]
            return kind, found.group("table"), lock, effect
    return "other", None, None, UNKNOWN if _touches_table(flat) else CATALOG


def _touches_table(flat: str) -> bool:
    """Whether an unmatched statement may change a table (else: a view, a function, a
    comment, a type: catalog only)."""
    return not re.match(r"^(?:CREATE|DROP|ALTER|COMMENT\s+ON)\s+(?:OR\s+REPLACE\s+)?"
                        r"(?:VIEW|FUNCTION|PROCEDURE|TRIGGER|TYPE|SCHEMA|EXTENSION|SEQUENCE|"
                        r"COLUMN|INDEX)\b", flat, re.IGNORECASE)


def of_revisions(conn: Connection, rendered: list[tuple[str, str]]) -> list[Effect]:
    """Every pending statement, against the live tables, from each revision's own offline
    rendering (runtime/stepping.render_upgrades): what ``plan`` shows and TABLE_POLICY
    weighs are the same statements."""
    pairs: list[tuple[str, str]] = []
    for revision, sql in rendered:
        if sql.startswith(NOT_RENDERED):
            pairs.append((revision, sql.strip()))
            continue
        pairs += [(revision, body) for body in statements(sql) if not _OWN.match(body)]
    return _against(conn, pairs)


def statements(sql: str) -> list[str]:
    """The statements of ``sql``, each without its comments or its ``;``.

    One lexing pass (sqlparse's splitter, as ``sqlparse.split``), its comment tokens
    dropped: ``sqlparse.format(strip_comments=True)`` on each part lexed and grouped it
    all again: two thirds of what TABLE_POLICY cost an upgrade (bench/README.md).
    """
    found = []
    # sqlparse's engine has no annotations (as its lexer in autogenerate/sqltokens.py).
    for statement in FilterStack().run(sql):  # type: ignore[no-untyped-call]
        body = "".join(" " if token.ttype in Comment else token.value
                       for token in statement.flatten())
        body = body.strip().rstrip(";").strip()
        if body:
            found.append(body)
    return found


def _against(conn: Connection, pairs: list[tuple[str, str]]) -> list[Effect]:
    out: list[Effect] = []
    sizes: dict[str, tuple[int | None, int | None]] = {}
    for revision, statement in pairs:
        kind, table, lock, effect = classify(statement)
        if table is not None and table not in sizes:  # as written: quotes keep the case
            sizes[table] = _size_of(conn, table)
        rows, size = sizes.get(table or "", (None, None))
        named = table.replace('"', "") if table else None
        out.append(Effect(revision, shown(statement), kind, named, lock, effect, rows, size,
                          grade(lock, effect, rows, size)))
    return out


def grade(lock: str | None, effect: str, rows: int | None, size: int | None) -> str:
    if effect == UNKNOWN:
        return "caution"
    if effect not in (SCAN, REWRITE):
        return "ok"
    large = (rows or 0) >= LARGE_ROWS or (size or 0) >= LARGE_BYTES
    if not large:
        return "ok"
    return "danger" if lock in BLOCKS_WRITES else "caution"


def _size_of(conn: Connection, table: str) -> tuple[int | None, int | None]:
    """(estimated rows, total bytes) of ``table`` now; (None, None) when it does not exist
    yet (a pending revision creates it) or was never analyzed."""
    row = conn.execute(text(
        "SELECT c.reltuples, pg_total_relation_size(c.oid) FROM pg_class c "
        "WHERE c.oid = to_regclass(:t)"), {"t": table}).first()
    if row is None:
        return None, None
    tuples, size = row
    return (None if tuples is None or tuples < 0 else int(tuples)), int(size)


def _size(size: int | None) -> str:
    """Bytes as a person reads them (kB, MB, GB: powers of 1024)."""
    if size is None:
        return "size unknown"
    if size < 1024:
        return f"{size} B"
    scaled, power = float(size) / 1024, 0
    while scaled >= 1024 and power < 2:
        scaled, power = scaled / 1024, power + 1
    return f"{scaled:.1f} {('kB', 'MB', 'GB')[power]}"


def refuse_busy(conn: Connection, steps: list[Any], policy: str) -> list[str]:
    """Under TABLE_POLICY=enforce, refuse the run when a pending revision would block writes
    while it rewrites or scans a large table (graded ``danger``) and does not waive it
    (``BUSY_TABLE_WAIVER = "why"``); under warn, return what enforce would refuse."""
    if policy == "off" or not steps:
        return []
    found = of_revisions(conn, stepping.render_upgrades(steps))
    conn.commit()
    waived = {str(s.revision.revision) for s in steps
              if str(getattr(s.revision.module, WAIVER, "") or "").strip()}
    danger = [e for e in found if e.grade == "danger" and e.revision not in waived]
    if not danger:
        return []
    lines = [f"revision {e.revision}:{e.line()[1:]}" for e in danger]
    if policy == "enforce":
        first = danger[0]
        raise BusyTableRefused(
            f"revision {first.revision} would block writes to {first.table} "
            f"({first.rows if first.rows is not None else 'unknown'} rows) while it "
            f"{'rewrites' if first.effect == REWRITE else 'scans'} it: refused under "
            "TABLE_POLICY=enforce (prod's default); nothing was applied. Split it (ADD "
            "CONSTRAINT ... NOT VALID then VALIDATE; a nullable column, then a backfill; CREATE "
            "INDEX CONCURRENTLY), or, if it is safe here, say why in the revision: "
            f'{WAIVER} = "..."', lines)
    return [f"table: {line} (TABLE_POLICY=warn here; prod enforces it)" for line in lines]
