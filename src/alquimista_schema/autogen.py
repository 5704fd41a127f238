"""Autogenerate support: ownership filters, schema-object comparison, readable diffs.

Importing this module registers the comparator and renderers with Alembic.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alquimista_schema.models import owned_tables
from alquimista_schema.schema_objects import SchemaObject

# --- ownership -------------------------------------------------------------------


def make_filters(metadata: MetaData) -> tuple[Any, Any]:
    """Return ``include_name`` and ``include_object`` hooks for ``metadata``.

    Only tables the package owns are reflected at all: other schemas, the older
    platform's ``public`` tables, Alembic's and the runner's own tables never
    appear, so they can never be proposed for a drop.
    """
    owned = owned_tables(metadata)

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name is None
        if type_ == "table":
            return name in owned
        return True

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        if type_ == "table":
            return name in owned and getattr(obj, "schema", None) is None
        return True

    return include_name, include_object


# --- schema objects ----------------------------------------------------------------

_CANONICAL_SQL = {
    "view": """
        SELECT pg_get_viewdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'v' AND c.relname = :name AND n.nspname = current_schema()
    """,
    "function": "SELECT pg_get_functiondef(to_regprocedure(:name))",
    "trigger": """
        SELECT pg_get_triggerdef(t.oid)
          FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgname = :name AND t.tgrelid = to_regclass(:table)
    """,
}


def live_definition(connection: Connection, obj: SchemaObject) -> str | None:
    """Return PostgreSQL's canonical text of ``obj`` as it is in the database, or None."""
    params: dict[str, str] = {"name": obj.name}
    if obj.kind == "trigger":
        tname, _, table = obj.name.partition(" ON ")
        params = {"name": tname, "table": table}
    # The pg_get_*def functions are strict: a missing object (NULL oid) gives NULL.
    value = connection.execute(text(_CANONICAL_SQL[obj.kind]), params).scalar()
    return None if value is None else str(value)


def declared_definition(connection: Connection, obj: SchemaObject) -> str | None:
    """Return PostgreSQL's canonical text of ``obj`` as declared.

    The declaration is applied inside a savepoint that is always rolled back, so
    the comparison uses the server's own normal form on both sides.
    """
    for statements in ([obj.create_sql], [obj.drop_sql, obj.create_sql]):
        savepoint = connection.begin_nested()
        try:
            for sql in statements:
                connection.exec_driver_sql(sql)
            return live_definition(connection, obj)
        except DBAPIError:
            continue
        finally:
            savepoint.rollback()
    return None


def _recreate_sql(obj: SchemaObject, live: str) -> str:
    """Turn PostgreSQL's canonical text back into a create statement (for downgrades)."""
    if obj.kind == "view":
        return f"CREATE OR REPLACE VIEW {obj.name} AS\n{live.strip().rstrip(';')};"
    if obj.kind == "trigger":
        return re.sub(r"^CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", live) + ";"
    return live.strip() + ";"


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


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST)
def compare_schema_objects(autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps,
                           schemas: set[str | None]) -> None:
    """Compare the declared schema objects with the live ones (default schema only)."""
    metadata = autogen_context.metadata
    connection = autogen_context.connection
    if None not in schemas or not isinstance(metadata, MetaData) or connection is None:
        return
    objects: tuple[SchemaObject, ...] = metadata.info.get("schema_objects", ())
    for obj in objects:
        live = live_definition(connection, obj)
        if live is None:
            upgrade_ops.ops.append(CreateObjectOp(obj))
            continue
        declared = declared_definition(connection, obj)
        if declared != live:
            old = SchemaObject(obj.kind, obj.name, _recreate_sql(obj, live), obj.drop_sql)
            upgrade_ops.ops.append(ReplaceObjectOp(obj, old))


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
    return _render_sql(op.obj.create_sql)


@renderers.dispatch_for(DropObjectOp)
def _render_drop(autogen_context: AutogenContext, op: DropObjectOp) -> str:
    return _render_sql(op.obj.drop_sql)


@renderers.dispatch_for(ReplaceObjectOp)
def _render_replace(autogen_context: AutogenContext, op: ReplaceObjectOp) -> str:
    if op.new.kind == "function":
        # CREATE OR REPLACE cannot change a function's result type; drop first,
        # in the same transaction, so a failure leaves the old one in place.
        return _render_sql(op.new.drop_sql, op.new.create_sql)
    return _render_sql(op.new.create_sql)


# --- readable differences --------------------------------------------------------


def describe_diff(diff: Any) -> str:
    """Render one of Alembic's diff tuples as a plain sentence."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(describe_diff(d) for d in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        verb = "add" if kind == "add_table" else "drop"
        return f"{verb} table {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        verb = "add" if kind == "add_column" else "drop"
        return f"{verb} column {diff[2]}.{diff[3].name} ({diff[3].type})"
    if kind in ("add_index", "remove_index"):
        verb = "add" if kind == "add_index" else "drop"
        idx = diff[1]
        return f"{verb} index {idx.name} on {idx.table.name}"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        verb = "add" if kind.startswith("add") else "drop"
        con = diff[1]
        return f"{verb} constraint {con.name} on {con.table.name}"
    if kind.startswith("modify_"):
        _, _schema, table, column, _kw, old, new = diff
        what = kind.removeprefix("modify_").replace("_", " ")
        return f"change {what} of {table}.{column}: {_show(old)} -> {_show(new)}"
    if kind.split("_", 1)[0] in ("add", "remove", "replace") and len(diff) == 2:
        verb, _, obj_kind = kind.partition("_")
        verb = {"add": "create", "remove": "drop"}.get(verb, verb)
        return f"{verb} {obj_kind} {diff[1]}"
    return repr(diff)


def _show(value: Any) -> str:
    arg = getattr(value, "arg", None)  # server defaults
    if arg is not None:
        return str(getattr(arg, "text", arg))
    return "none" if value is None else str(value)
