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

from alembic import command
from alquimista_schema import introspect, migrate, planning, running, scripts
from alquimista_schema.dsn import Dsn
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


def _same_text(a: str | None, b: str | None) -> bool:
    """Equal up to whitespace: function bodies are stored verbatim, reformatting is no change."""
    if a is None or b is None:
        return a == b
    return a.split() == b.split()


def _quote(value: str | None) -> str:
    return "none" if value is None else repr(value)


def _comment(what: str, got: str | None, want: str | None) -> list[str]:
    if got == want:
        return []
    return [f"comment on {what}: is {_quote(got)}, expected {_quote(want)}"]


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
        out.extend(_comment(f"table {table}", got["comment"], want["comment"]))
        out.extend(_column_differences(table, got["columns"], want["columns"]))
        for kind, label in (("indexes", "index"), ("constraints", "constraint"),
                            ("triggers", "trigger")):
            out.extend(_named_differences(table, label, got[kind], want[kind]))
    for label in sorted(set(live["objects"]) | set(expected["objects"])):
        got, want = live["objects"].get(label), expected["objects"].get(label)
        if want is None and got is not None:
            out.append(f"{label}: present, but not expected at this revision")
        elif got is None and want is not None:
            out.append(f"{label}: missing")
        elif got is not None and want is not None:
            kind = label.split(" ", 1)[0]
            out.extend(_OBJECT_DIFFERENCES[kind](label, got, want))
            out.extend(_comment(label, got["comment"], want["comment"]))
    return out


def _view_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Name the first column whose name, type or expression differs, else the rest."""
    if _same_text(got["definition"], want["definition"]):
        return []
    for i in range(max(len(got["columns"]), len(want["columns"]))):
        g = got["columns"][i] if i < len(got["columns"]) else None
        w = want["columns"][i] if i < len(want["columns"]) else None
        if g != w:
            return [f"{label}: column {i + 1} is {g or 'missing'}, expected {w or 'none'}"]
    for i, (g, w) in enumerate(zip(got["targets"], want["targets"], strict=False)):
        if g.split() != w.split():
            name = want["columns"][i].split(" ", 1)[0]
            return [f"{label}: column {i + 1} ({name}) is computed as {g}, expected {w}"]
    return [f"{label}: its FROM, WHERE, GROUP BY or ORDER BY differs from the revision's"]


_FUNCTION_FACTS = (("language", "language"), ("volatility", "volatility"),
                   ("arguments", "arguments"), ("result", "result type"))


def _function_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Name each of language, volatility, arguments, result type and body that differs."""
    out = [f"{label}: {name} is {got[key]}, expected {want[key]}"
           for key, name in _FUNCTION_FACTS if got[key] != want[key]]
    if not _same_text(got["body"], want["body"]):
        out.append(f"{label}: body differs from the revision's (beyond whitespace)")
    if not out and not _same_text(got["definition"], want["definition"]):
        # SECURITY DEFINER, SET, COST, PARALLEL...: whatever else pg_get_functiondef shows
        out.append(f"{label}: its attributes differ (pg_get_functiondef): is "
                   f"{' '.join(got['definition'].split())}")
    return out


_OBJECT_DIFFERENCES = {"view": _view_differences, "function": _function_differences}


def _column_differences(table: str, got: list[dict[str, Any]],
                        want: list[dict[str, Any]]) -> list[str]:
    out = []
    got_by, want_by = {c["name"]: c for c in got}, {c["name"]: c for c in want}
    for name, w in want_by.items():
        g = got_by.get(name)
        if g is None:
            out.append(f"column {table}.{name}: missing (expected {w['type']})")
            continue
        out.extend(_column_facts(f"{table}.{name}", g, w))
    for name, g in got_by.items():
        if name not in want_by:
            out.append(f"column {table}.{name}: present ({g['type']}), but not expected")
    common = [n for n in (c["name"] for c in got) if n in want_by]
    if not out and common != [c["name"] for c in want]:
        out.append(f"table {table}: column order is {', '.join(common)}; expected "
                   f"{', '.join(c['name'] for c in want)}")
    return out


def _column_facts(column: str, g: dict[str, Any], w: dict[str, Any]) -> list[str]:
    out = []
    if g["type"] != w["type"]:
        out.append(f"column {column}: type is {g['type']}, expected {w['type']}")
    if g["nullable"] != w["nullable"]:
        out.append(f"column {column}: {'nullable' if g['nullable'] else 'NOT NULL'}, "
                   f"expected {'nullable' if w['nullable'] else 'NOT NULL'}")
    if g["default"] != w["default"]:
        out.append(f"column {column}: default is {g['default'] or 'none'}, "
                   f"expected {w['default'] or 'none'}")
    return out + _comment(f"column {column}", g["comment"], w["comment"])


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


def adopt(url: str | URL | Dsn, *, dry_run: bool = False,
          run: migrate.Run | None = None) -> Adoption:
    """Stamp the newest revision the live schema matches exactly; else raise DriftDetected.

    Verification and stamp happen under the migration lock, so nothing can change
    the schema in between. A refusal changes nothing, not even the audit table.
    """
    run = run or migrate.Run(action="adopt")
    run.action = "adopt"
    script = migrate.script_directory()
    with running.locked(url, run, None) as progress, run.connection(url) as conn:
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
        config = scripts.make_config(connection=conn, stdout=io.StringIO())
        command.stamp(config, revision)
        progress.to_revision, progress.changed = revision, True
        return Adoption("adopted", revision,
                        f"the schema matches revision {revision} exactly; stamped it")
