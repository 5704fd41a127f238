"""Adopt a database the legacy SQL files built: verify it object for object, then stamp.

Flyway's ``baseline`` and Alembic's ``stamp`` trust the operator; this checks. The
expected schema of every revision is built by replaying the revisions into a
scratch schema inside one transaction that is always rolled back, so it needs no
privilege beyond the migration role's (CREATE on its own database; no CREATE
DATABASE) and leaves nothing behind. Only objects the package owns are compared.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from alembic import command as alembic_command
from alquimista_schema import command
from alquimista_schema.autogenerate.differences import differences
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import DriftDetected, SchemaError
from alquimista_schema.runtime import planning, skeleton
from alquimista_schema.schema import introspect
from alquimista_schema.script import directory


@dataclass(frozen=True)
class Adoption:
    """What adoption found, and what it did."""

    status: str
    """``adopted``, ``would_adopt`` (dry run), ``already_managed`` or ``empty``."""
    revision: str | None
    message: str
    differences: list[str] = field(default_factory=list)


def expected_snapshots(conn: Connection) -> dict[str, introspect.Snapshot]:
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
        for info in command.history():
            config = directory.make_config(connection=conn, stdout=io.StringIO())
            alembic_command.upgrade(config, info.revision)
            results[info.revision] = _rename(introspect.snapshot(conn), f"{scratch}.", "public.")
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


def adopt(url: str | URL | Dsn, *, dry_run: bool = False,
          run: command.Run | None = None) -> Adoption:
    """Stamp the newest revision the live schema matches exactly; else raise DriftDetected.

    Verification and stamp happen under the migration lock, so nothing can change
    the schema in between. A refusal changes nothing, not even the audit table.
    """
    run = run or command.Run(action="adopt")
    run.action = "adopt"
    script = command.script_directory()
    with skeleton.locked(url, run, None) as progress, run.connection(url) as conn:
        progress.audit_errors = False
        at = planning.current_heads(script, conn)
        if at:
            return Adoption("already_managed", at[0],
                            f"the database is already managed (at {at[0]}); nothing to adopt")
        live = introspect.snapshot(conn)
        if not live["tables"] and not any(live["objects"].values()):
            return Adoption("empty", None, "the database holds none of the package's objects: "
                            "nothing to adopt; run `upgrade` to create them")
        scored = [(rev, differences(live, snap))
                  for rev, snap in expected_snapshots(conn).items()]
        matches = [rev for rev, diffs in scored if not diffs]
        if not matches:
            # Report against the closest revision: the one whose set of tables fits best,
            # then the fewest differences, newest on ties.
            rev, diffs = min(reversed(scored), key=_closeness)
            raise DriftDetected(
                f"cannot adopt: the schema matches no revision exactly; closest is {rev}, "
                f"with {len(diffs)} difference(s). Nothing was changed", diffs)
        revision = matches[-1]
        if dry_run:
            return Adoption("would_adopt", revision,
                            f"the schema matches revision {revision} exactly; would stamp it")
        config = directory.make_config(connection=conn, stdout=io.StringIO())
        alembic_command.stamp(config, revision)
        progress.to_revision, progress.changed = revision, True
        return Adoption("adopted", revision,
                        f"the schema matches revision {revision} exactly; stamped it")
