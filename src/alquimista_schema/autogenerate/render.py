"""How schema-object operations are written into a revision, and diffs into words.

Importing this module registers the renderers with Alembic.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops

from alquimista_schema.schema.objects import SchemaObject


class CreateObjectOp(ops.MigrateOperation):
    """Create a view, function or trigger."""

    def __init__(self, obj: SchemaObject) -> None:
        self.obj = obj

    def reverse(self) -> DropObjectOp:
        return DropObjectOp(self.obj)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return (f"add_{self.obj.kind}", self.obj.name)


class DropObjectOp(ops.MigrateOperation):
    """Drop a view, function or trigger."""

    def __init__(self, obj: SchemaObject) -> None:
        self.obj = obj

    def reverse(self) -> CreateObjectOp:
        return CreateObjectOp(self.obj)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return (f"remove_{self.obj.kind}", self.obj.name)


class ReplaceObjectOp(ops.MigrateOperation):
    """Replace the definition of a view, function or trigger."""

    def __init__(self, new: SchemaObject, old: SchemaObject) -> None:
        self.new = new
        self.old = old

    def reverse(self) -> ReplaceObjectOp:
        return ReplaceObjectOp(self.old, self.new)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return (f"replace_{self.new.kind}", self.new.name)


def _render_sql(*statements: str) -> str:
    """Render statements as ``op.execute`` calls, one string literal per SQL line.

    Alembic indents the rendered code, so a triple-quoted literal would change a
    function's body (PostgreSQL stores it verbatim); adjacent literals keep it exact.
    """
    calls = []
    for sql in statements:
        lines = sql.strip().rstrip(";").splitlines(keepends=True)
        literals = "\n".join(f"    {line!r}" for line in lines)
        calls.append(f"op.execute(\n{literals}\n)")
    return "\n".join(calls)


@renderers.dispatch_for(CreateObjectOp)
def _render_create(autogen_context: AutogenContext, op: CreateObjectOp) -> str:
    return _render_sql(*op.obj.statements)


@renderers.dispatch_for(DropObjectOp)
def _render_drop(autogen_context: AutogenContext, op: DropObjectOp) -> str:
    return _render_sql(op.obj.drop_sql)


@renderers.dispatch_for(ReplaceObjectOp)
def _render_replace(autogen_context: AutogenContext, op: ReplaceObjectOp) -> str:
    statements = list(op.new.statements)
    if op.new.comment is None and op.old.comment is not None:
        statements.append(op.new.comment_sql(None))
    if op.new.kind == "function":
        # CREATE OR REPLACE cannot change a function's result type; drop first,
        # in the same transaction, so a failure leaves the old one in place.
        statements.insert(0, op.new.drop_sql)
    return _render_sql(*statements)


# --- readable differences --------------------------------------------------------


def _verb(kind: str) -> str:
    return {"add": "add", "remove": "drop"}[kind.split("_", 1)[0]]


# One sentence per shape of Alembic's diff tuples (and ours: ``(kind, name)``).
_DESCRIBE: dict[str, Any] = {
    "table": lambda d: f"{_verb(d[0])} table {d[1].name}",
    "column": lambda d: f"{_verb(d[0])} column {d[2]}.{d[3].name} ({d[3].type})",
    "index": lambda d: f"{_verb(d[0])} index {d[1].name} on {d[1].table.name}",
    "constraint": lambda d: f"{_verb(d[0])} constraint {d[1].name} on {d[1].table.name}",
    "fk": lambda d: f"{_verb(d[0])} constraint {d[1].name} on {d[1].table.name}",
    "table_comment": lambda d: (f"set comment of table {d[1].name}: {d[1].comment!r}"
                                if d[0].startswith("add") else
                                f"remove comment of table {d[1].name}"),
}


def describe_diff(diff: Any) -> str:
    """Render one of Alembic's diff tuples as a plain sentence."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(describe_diff(d) for d in diff)
    verb, _, what = diff[0].partition("_")
    if verb == "modify":
        _, _schema, table, column, _kw, old, new = diff
        return f"change {what.replace('_', ' ')} of {table}.{column}: {_show(old)} -> {_show(new)}"
    if what in _DESCRIBE:
        return str(_DESCRIBE[what](diff))
    if verb in ("add", "remove", "replace") and len(diff) == 2:  # our schema objects
        action = {"add": "create", "remove": "drop"}.get(verb, verb)
        return f"{action} {what} {diff[1]}"
    return repr(diff)


def _show(value: Any) -> str:
    arg = getattr(value, "arg", None)  # server defaults
    if arg is not None:
        return str(getattr(arg, "text", arg))
    return "none" if value is None else str(value)
