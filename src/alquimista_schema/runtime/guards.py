"""The refusals a run makes before it changes anything.

Each guard raises the package's error and changes nothing: a standby, a destructive
verb in prod without its confirmation, an unadopted database, a downgrade that drops
tables or columns holding data, a revision with unwaived lint findings under the enforce policy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alquimista_schema.errors import DowngradeRefused, LintRefused, NotAdopted, ReadOnlyReplica
from alquimista_schema.runtime import stepping
from alquimista_schema.schema import introspect
from alquimista_schema.script import lint

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

# One identifier as PostgreSQL writes it: "quoted, with "" inside" or a bare word.
_IDENT = r'(?:"(?:[^"]|"")+"|[^\s".;(),]+)'
_NAME = rf"{_IDENT}(?:\.{_IDENT})?"
_DROP_TABLE = re.compile(rf"^\s*DROP TABLE (?:IF EXISTS )?({_NAME})", re.IGNORECASE | re.MULTILINE)
# Alembic renders op.drop_column as ALTER TABLE t DROP COLUMN c (the COLUMN keyword always).
_DROP_COLUMN = re.compile(
    rf"^\s*ALTER TABLE (?:IF EXISTS )?(?:ONLY )?({_NAME}) DROP COLUMN (?:IF EXISTS )?({_IDENT})",
    re.IGNORECASE | re.MULTILINE)
_PART = re.compile(_IDENT)
# Rows are counted up to this many: enough to say what would be lost, never a long scan.
COUNT_LIMIT = 1_000_000


class Table(NamedTuple):
    """What a downgrade drops that can hold data: a table, or one column of a table (its
    name as people read it, and the table as SQL names it)."""

    name: str
    sql: str
    column: str | None = None
    """The column's SQL spelling, for a dropped column."""

    def describe(self, rows: int) -> str:
        """``table leads (3 rows)``, ``column dry_run_log.x (2 rows with a value)``."""
        many = f"over {COUNT_LIMIT:,}" if rows > COUNT_LIMIT else f"{rows:,}"
        if self.column is None:
            return f"table {self.name} ({many} row{'s' if rows != 1 else ''})"
        column = _unquote(self.column)
        return f"column {self.name}.{column} ({many} row{'s' if rows != 1 else ''} with a value)"


def _unquote(part: str) -> str:
    """Unquote one part ("" is one quote); a bare part folds to lower case, as in SQL."""
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def _table(sql: str, column: str | None = None) -> Table:
    return Table(".".join(_unquote(p) for p in _PART.findall(sql)), sql, column)


def confirmation(target: str) -> str:
    """Say how each door repeats ``target`` as confirmation."""
    return (f"--confirm {target} (CLI), -x confirm={target} (alembic) or "
            f'"confirm": "{target}" (event)')


def refuse_in_prod(environment: str, what: str | None, target: str,
                   confirm: str | None) -> None:
    """Refuse (changing nothing) a destructive verb ``what`` in prod unless ``confirm``
    repeats its target (None: the verb destroys nothing)."""
    if what is not None and environment == "prod" and confirm != target:
        raise DowngradeRefused(
            f"{what} refused in prod: it can destroy data; nothing was changed. Repeat the "
            f"target as confirmation: {confirmation(target)}")


def dropped(script: ScriptDirectory, start: str | None, dest: str) -> list[Table]:
    """The tables and columns the downgrade from ``start`` to ``dest`` drops, read from its
    offline SQL (rendered for review, never executed)."""
    sql = stepping.render_downgrade(script, start, dest)
    found = [(m.start(), _table(m[1])) for m in _DROP_TABLE.finditer(sql)]
    found += [(m.start(), _table(m[1], m[2])) for m in _DROP_COLUMN.finditer(sql)]
    return list(dict.fromkeys(item for _, item in sorted(found, key=lambda pair: pair[0])))


def authorise_downgrade(conn: Connection, dropping: list[Table], target: str,
                        confirm: str | None) -> None:
    """Refuse (changing nothing) a downgrade that drops tables or columns holding data,
    unconfirmed, in every environment: the message names each and its rows."""
    if confirm == target or not dropping:
        return
    full = [item.describe(rows) for item in dropping if (rows := _rows(conn, item))]
    if conn.in_transaction():
        conn.commit()
    if full:
        raise DowngradeRefused(
            f"downgrade to {target} would drop what holds data: {', '.join(full)}; "
            f"nothing was changed. To drop them, repeat the target as confirmation: "
            f"{confirmation(target)}")


def _rows(conn: Connection, item: Table) -> int:
    """Rows of the table (with a value in the column), counted up to COUNT_LIMIT + 1."""
    # to_regclass reads SQL's own spelling (quotes kept): it never raises, and the oid it
    # returns names the table whatever its spelling
    oid = conn.execute(text("SELECT to_regclass(:t)::oid"), {"t": item.sql}).scalar()
    if oid is None:
        return 0
    relation = _relation(conn, oid)
    if item.column is not None:
        name = _unquote(item.column)
        present = conn.execute(text(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = :oid "
            "AND attname = :name AND attnum > 0 AND NOT attisdropped"),
            {"oid": oid, "name": name}).scalar()
        if present is None:
            return 0
        relation += f" WHERE {present} IS NOT NULL"
    return int(conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM {relation} LIMIT {COUNT_LIMIT + 1}) AS found"
    )).scalar_one())


def _relation(conn: Connection, oid: int) -> str:
    """The relation's name quoted by PostgreSQL itself, safe to put in a statement."""
    return str(conn.execute(text("SELECT CAST(CAST(:oid AS oid) AS regclass)::text"),
                            {"oid": oid}).scalar())


def guard_replica(conn: Connection) -> None:
    """Refuse a standby: it cannot be migrated, and its writer is elsewhere."""
    in_recovery = conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
    conn.commit()
    if in_recovery:
        raise ReadOnlyReplica(
            "connected to a read-only replica (pg_is_in_recovery() is true): point the URL "
            "or the secret's host at the cluster's writer endpoint")


def refuse_unadopted(conn: Connection) -> None:
    """Raise NotAdopted when an unversioned database already holds the package's objects.

    Call it only for a database without a version: such objects were made by the
    legacy files (or by hand), and applying the first revision over them would fail
    halfway; ``adopt`` verifies them and records the revision they match.
    """
    present = introspect.owned_objects_present(conn)
    if conn.in_transaction():
        conn.commit()
    if present:
        raise NotAdopted(
            f"the database holds the package's objects ({', '.join(present[:4])}"
            f"{', ...' if len(present) > 4 else ''}) but no alembic_version: it was built by "
            "the legacy files or by hand. Run `alquimista-schema adopt` (the Lambda: "
            '{"action": "adopt"}) to verify it and record its revision, then upgrade. '
            "Nothing was changed")


def refuse_unlinted(revisions: list[Script], policy: str) -> list[str]:
    """Under the enforce policy, refuse the first revision that is not lint-clean; under
    warn, return what enforce would refuse (the run's warnings); under off, nothing."""
    if policy == "off":
        return []
    results = lint.load_manifest()
    problems = []
    for rev in revisions:
        if rev.revision not in results:
            problems.append(
                f"revision {rev.revision} has no lint result in migrations/lint.json (stale): "
                "run `alquimista-schema lint --write` and commit it")
            continue
        bad = [f for f in results[rev.revision] if not f.waived]
        if bad:
            rules = ", ".join(sorted({f.rule for f in bad}))
            problems.append(
                f"revision {rev.revision} has {len(bad)} unwaived squawk finding(s) ({rules}): "
                "fix them or waive each in the revision's SQUAWK_WAIVERS with a reason")
    if problems and policy == "enforce":
        raise LintRefused(f"{problems[0]}; refused under the enforce policy")
    return [f"lint: {line} (LINT_POLICY=warn here; prod enforces it)" for line in problems]
