"""The refusals a run makes before it changes anything.

Each guard raises the package's error and changes nothing: a standby, a destructive
verb in prod without its confirmation, an unadopted database, a downgrade that drops
tables holding rows, a revision with unwaived lint findings under the enforce policy.
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
_DROP_TABLE = re.compile(rf"^\s*DROP TABLE (?:IF EXISTS )?({_IDENT}(?:\.{_IDENT})?)",
                         re.IGNORECASE | re.MULTILINE)
_PART = re.compile(_IDENT)


class Table(NamedTuple):
    """A table a downgrade drops: its name as people read it, and as SQL names it."""

    name: str
    sql: str


def _table(sql: str) -> Table:
    """Unquote each part ("" is one quote); a bare part folds to lower case, as in SQL."""
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
             for p in _PART.findall(sql)]
    return Table(".".join(parts), sql)


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
    """Return the tables the downgrade from ``start`` to ``dest`` drops, from its offline SQL."""
    sql = stepping.render_downgrade(script, start, dest)
    return list(dict.fromkeys(_table(m) for m in _DROP_TABLE.findall(sql)))


def dropped_tables(script: ScriptDirectory, start: str | None, dest: str) -> list[str]:
    """The names of the tables ``dropped`` finds, as people read them."""
    return [table.name for table in dropped(script, start, dest)]


def authorise_downgrade(conn: Connection, tables: list[Table], target: str,
                        confirm: str | None) -> None:
    """Refuse (changing nothing) a downgrade that drops tables holding rows, unconfirmed."""
    if confirm == target or not tables:
        return
    full = []
    for table in tables:
        # to_regclass reads SQL's own spelling (quotes kept): it never raises, and the
        # oid it returns names the table whatever its spelling
        oid = conn.execute(text("SELECT to_regclass(:t)::oid"), {"t": table.sql}).scalar()
        if oid is not None and conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM " + _relation(conn, oid) + ")")).scalar():
            full.append(table.name)
    if conn.in_transaction():
        conn.commit()
    if full:
        raise DowngradeRefused(
            f"downgrade to {target} would drop table(s) holding rows: {', '.join(full)}; "
            f"nothing was changed. To drop them, repeat the target as confirmation: "
            f"{confirmation(target)}")


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


def refuse_unlinted(revisions: list[Script], policy: str) -> None:
    """Under the enforce policy, refuse the first revision that is not lint-clean."""
    if policy != "enforce":
        return
    results = lint.load_manifest()
    for rev in revisions:
        if rev.revision not in results:
            raise LintRefused(
                f"revision {rev.revision} has no lint result in this bundle (migrations/"
                "lint.json is stale): refusing under the enforce policy")
        bad = [f for f in results[rev.revision] if not f.waived]
        if bad:
            rules = ", ".join(sorted({f.rule for f in bad}))
            raise LintRefused(
                f"revision {rev.revision} has {len(bad)} unwaived squawk finding(s) ({rules}): "
                "fix them or waive each in the revision's SQUAWK_WAIVERS with a reason")
