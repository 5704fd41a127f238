"""Adoption's verification: does a database the legacy SQL files built match a revision?

Flyway's ``baseline`` and Alembic's ``stamp`` trust the operator; this checks. The
expected schema of every revision is built by replaying the revisions into a
scratch schema inside one transaction that is always rolled back, so it needs no
privilege beyond the migration role's (CREATE on its own database; no CREATE
DATABASE) and leaves nothing behind. Only objects the package owns are compared, by
the rules ``check`` uses too (differences.py). The stamp that follows a match runs
under the migration lock, in the run skeleton (runtime/skeleton.py: ``adopt``).
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic import command as alembic_command
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.autogenerate.differences import differences
from alquimista_schema.errors import DriftDetected, SchemaError
from alquimista_schema.schema import introspect
from alquimista_schema.script import directory

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


@dataclass(frozen=True)
class Adoption:
    """What adoption found, and what it did."""

    status: str
    """``matches`` (verified, not yet stamped), ``adopted``, ``would_adopt`` (dry run),
    ``already_managed`` or ``empty``."""
    revision: str | None
    message: str
    differences: list[str] = field(default_factory=list)


def expected_snapshots(conn: Connection,
                       script: ScriptDirectory) -> dict[str, introspect.Snapshot]:
    """Return the owned schema each revision produces, oldest first (nothing persists)."""
    scratch = f"alq_adopt_{secrets.token_hex(4)}"
    results: dict[str, introspect.Snapshot] = {}
    if conn.in_transaction():
        conn.commit()
    outer = conn.begin()
    try:
        try:
            conn.exec_driver_sql(f"CREATE SCHEMA {scratch}")
        except DBAPIError as exc:
            raise SchemaError(
                "adopt needs to build the expected schema in a scratch schema that it rolls "
                "back, which takes CREATE on this database; grant it to the migration role"
            ) from exc
        conn.exec_driver_sql(f"SET LOCAL search_path = {scratch}, public")
        for rev in directory.chain(script):
            config = directory.make_config(connection=conn, stdout=io.StringIO())
            alembic_command.upgrade(config, rev.revision)
            results[rev.revision] = _rename(introspect.snapshot(conn), f"{scratch}.", "public.")
    finally:
        outer.rollback()
    return results


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {_rename(k, old, new): _rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    return value


def _closeness(item: tuple[str, list[str]]) -> tuple[int, int]:
    diffs = item[1]
    whole_tables = sum(1 for d in diffs if d.startswith("table ")
                       and (d.endswith(": missing") or "not expected" in d))
    return whole_tables, len(diffs)


def verify(conn: Connection, script: ScriptDirectory) -> Adoption:
    """Return the newest revision the live schema matches exactly; raise DriftDetected
    (listing every difference against the closest revision) when none does."""
    at = directory.current_heads(script, conn)
    if at:
        return Adoption("already_managed", at[0],
                        f"the database is already managed (at {at[0]}); nothing to adopt")
    live = introspect.snapshot(conn)
    if not live["tables"] and not any(live["objects"].values()):
        return Adoption("empty", None, "the database holds none of the package's objects: "
                        "nothing to adopt; run `upgrade` to create them")
    scored = [(rev, differences(live, snap))
              for rev, snap in expected_snapshots(conn, script).items()]
    matches = [rev for rev, diffs in scored if not diffs]
    if not matches:
        # Report against the closest revision: the one whose set of tables fits best,
        # then the fewest differences, newest on ties.
        rev, diffs = min(reversed(scored), key=_closeness)
        raise DriftDetected(
            f"cannot adopt: the schema matches no revision exactly; closest is {rev}, "
            f"with {len(diffs)} difference(s). Nothing was changed", diffs)
    return Adoption("matches", matches[-1], f"the schema matches revision {matches[-1]} exactly")
