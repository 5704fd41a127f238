"""Adopt a database the legacy SQL files built: verify it object for object, then stamp.

Flyway's ``baseline`` and Alembic's ``stamp`` trust the operator; this checks. The
expected schema of every revision is built by replaying the revisions into a
scratch schema inside one transaction that is always rolled back, so it needs no
privilege beyond the migration role's (CREATE on its own database; no CREATE
DATABASE) and leaves nothing behind. Only objects the package owns are compared.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from alembic import command
from alquimista_schema import introspect, migrate, scripts
from alquimista_schema.errors import DriftDetected, SchemaError


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
        for info in migrate.history():
            config = scripts.make_config(connection=conn, stdout=io.StringIO())
            command.upgrade(config, info.revision)
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


def _same_function(a: Any, b: Any) -> bool:
    """Function bodies are stored verbatim: a reformatted body is the same function."""
    if isinstance(a, str) and isinstance(b, str):
        return re.sub(r"\s+", " ", a).strip() == re.sub(r"\s+", " ", b).strip()
    return bool(a == b)


def differences(live: introspect.Snapshot, expected: introspect.Snapshot) -> list[str]:
    """List, in plain words, every way ``live`` differs from ``expected``."""
    out: list[str] = []
    for table in sorted(set(live["tables"]) | set(expected["tables"])):
        got, want = live["tables"].get(table), expected["tables"].get(table)
        if want is None:
            out.append(f"table {table}: present, but not expected at this revision")
            continue
        if got is None:
            out.append(f"table {table}: missing")
            continue
        out.extend(_column_differences(table, got["columns"], want["columns"]))
        for kind, label in (("indexes", "index"), ("constraints", "constraint"),
                            ("triggers", "trigger")):
            out.extend(_named_differences(table, label, got[kind], want[kind]))
    for name in sorted(set(live["objects"]) | set(expected["objects"])):
        got, want = live["objects"].get(name), expected["objects"].get(name)
        if name.endswith(" exists"):
            if bool(got) != bool(want):
                out.append(f"{name.removesuffix(' exists')}: "
                           f"{'missing' if want else 'present, but not expected'}")
        elif want is None and got is not None:
            out.append(f"{name}: present, but not expected at this revision")
        elif got is None and want is not None:
            out.append(f"{name}: missing")
        elif not _same_function(got, want):
            out.append(f"{name}: definition differs from the revision's")
    return out


def _column_differences(table: str, got: list[dict[str, Any]],
                        want: list[dict[str, Any]]) -> list[str]:
    out = []
    got_by, want_by = {c["name"]: c for c in got}, {c["name"]: c for c in want}
    for name, w in want_by.items():
        g = got_by.get(name)
        if g is None:
            out.append(f"column {table}.{name}: missing (expected {w['type']})")
            continue
        if g["type"] != w["type"]:
            out.append(f"column {table}.{name}: type is {g['type']}, expected {w['type']}")
        if g["nullable"] != w["nullable"]:
            out.append(f"column {table}.{name}: "
                       f"{'nullable' if g['nullable'] else 'NOT NULL'}, expected "
                       f"{'nullable' if w['nullable'] else 'NOT NULL'}")
        if g["default"] != w["default"]:
            out.append(f"column {table}.{name}: default is {g['default'] or 'none'}, "
                       f"expected {w['default'] or 'none'}")
    for name, g in got_by.items():
        if name not in want_by:
            out.append(f"column {table}.{name}: present ({g['type']}), but not expected")
    common = [n for n in (c["name"] for c in got) if n in want_by]
    if not out and common != [c["name"] for c in want]:
        out.append(f"table {table}: column order is {', '.join(common)}; expected "
                   f"{', '.join(c['name'] for c in want)}")
    return out


def _named_differences(table: str, label: str, got: dict[str, Any],
                       want: dict[str, Any]) -> list[str]:
    out = []
    for name in sorted(set(got) | set(want)):
        if name not in got:
            out.append(f"{label} {table}.{name}: missing")
        elif name not in want:
            out.append(f"{label} {table}.{name}: present, but not expected")
        elif got[name] != want[name]:
            out.append(f"{label} {table}.{name}: is {_show(got[name])}; expected "
                       f"{_show(want[name])}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        valid = "" if value.get("validated", True) else " NOT VALID"
        return f"{value.get('definition')}{valid}"
    return str(value)


def _closeness(item: tuple[str, list[str]]) -> tuple[int, int]:
    diffs = item[1]
    whole_tables = sum(1 for d in diffs if d.startswith("table ")
                       and (d.endswith(": missing") or "not expected" in d))
    return whole_tables, len(diffs)


def adopt(url: str | URL, *, dry_run: bool = False, run: migrate.Run | None = None) -> Adoption:
    """Stamp the newest revision the live schema matches exactly; else raise DriftDetected.

    Verification and stamp happen under the migration lock, so nothing can change
    the schema in between. A refusal changes nothing, not even the audit table.
    """
    run = run or migrate.Run(action="adopt")
    run.action = "adopt"
    script = migrate.script_directory()
    with migrate.locked(url, run, None) as (_, state), run.connection(url) as conn:
        state["audit_errors"] = False
        at = migrate.current_heads(script, conn)
        if at:
            return Adoption("already_managed", at[0],
                            f"the database is already managed (at {at[0]}); nothing to adopt")
        live = introspect.snapshot(conn)
        if not live["tables"] and not any(v for k, v in live["objects"].items()
                                          if not k.endswith(" exists")):
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
        config = scripts.make_config(connection=conn, stdout=io.StringIO())
        command.stamp(config, revision)
        state["to"], state["changed"] = revision, True
        return Adoption("adopted", revision,
                        f"the schema matches revision {revision} exactly; stamped it")
