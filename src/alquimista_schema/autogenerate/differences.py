"""How a live schema differs from an expected one, in plain words.

Adoption and ``check`` (through autogenerate's comparator) use the same rules:
catalog facts compare exactly; view definitions and function bodies compare by
tokens (``sqltokens``), so a body re-typed in another keyword case or indentation
is the same function, and a changed literal, quoted name or number is not.
"""

from __future__ import annotations

from typing import Any

from alquimista_schema.autogenerate import sqltokens
from alquimista_schema.schema import introspect


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
            out.extend(object_differences(label, got, want))
    return out


def object_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """List how a live view, function or trigger differs from its expected state."""
    kind = label.split(" ", 1)[0]
    return [*_OBJECT_DIFFERENCES[kind](label, got, want),
            *_comment(label, got["comment"], want["comment"])]


def _view_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Name the first column whose name, type or expression differs, else the rest."""
    if sqltokens.same(got["definition"], want["definition"]):
        return []
    for i in range(max(len(got["columns"]), len(want["columns"]))):
        g = got["columns"][i] if i < len(got["columns"]) else None
        w = want["columns"][i] if i < len(want["columns"]) else None
        if g != w:
            return [f"{label}: column {i + 1} is {g or 'missing'}, expected {w or 'none'}"]
    for i, (g, w) in enumerate(zip(got["targets"], want["targets"], strict=False)):
        if not sqltokens.same(g, w):
            name = want["columns"][i].split(" ", 1)[0]
            return [f"{label}: column {i + 1} ({name}) is computed as {g}, expected {w}"]
    return [f"{label}: its FROM, WHERE, GROUP BY or ORDER BY differs from the revision's"]


_FUNCTION_FACTS = (("language", "language"), ("volatility", "volatility"),
                   ("arguments", "arguments"), ("result", "result type"))


def _function_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Name each of language, volatility, arguments, result type and body that differs."""
    out = [f"{label}: {name} is {got[key]}, expected {want[key]}"
           for key, name in _FUNCTION_FACTS if got[key] != want[key]]
    mismatch = sqltokens.first_mismatch(got["body"] or "", want["body"] or "")
    if mismatch is not None:
        out.append(f"{label}: body differs at {mismatch.describe()}")
    if not out and not sqltokens.same(_header(got), _header(want)):
        # SECURITY DEFINER, SET, COST, PARALLEL...: whatever else pg_get_functiondef shows
        out.append(f"{label}: its attributes differ (pg_get_functiondef): is "
                   f"{' '.join(_header(got).split())}")
    return out


def _header(function: dict[str, Any]) -> str:
    """Return pg_get_functiondef without the body, which is compared on its own."""
    definition: str = function["definition"]
    return definition.replace(function["body"], "", 1) if function["body"] else definition


def _trigger_differences(label: str, got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    mismatch = sqltokens.first_mismatch(got["definition"], want["definition"])
    return [] if mismatch is None else [f"{label}: differs at {mismatch.describe()}"]


_OBJECT_DIFFERENCES = {"view": _view_differences, "function": _function_differences,
                       "trigger": _trigger_differences}


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


