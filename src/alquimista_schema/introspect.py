"""A comparable picture of the objects the package owns in a live database.

Everything is read from the catalogs in PostgreSQL's own canonical text
(``format_type``, ``pg_get_indexdef``, ``pg_get_constraintdef``...), so two
databases built by different routes (the legacy SQL files, the revisions) compare
equal exactly when their owned objects are the same. Objects the package does not
own are never read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from alquimista_schema import autogen, models
from alquimista_schema.schema_objects import SHARED_UPDATED_AT_FUNCTION, SchemaObject

Snapshot = dict[str, Any]

_COLUMNS = text("""
    SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
           a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables)
       AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum
""")

_INDEXES = text("""
    SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname = ANY(:tables)
     ORDER BY t.relname, i.relname
""")

_CONSTRAINTS = text("""
    SELECT t.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated
      FROM pg_constraint k
      JOIN pg_class t ON t.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname = ANY(:tables)
     ORDER BY t.relname, k.conname
""")

_TRIGGERS = text("""
    SELECT t.relname, g.tgname, pg_get_triggerdef(g.oid)
      FROM pg_trigger g
      JOIN pg_class t ON t.oid = g.tgrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname = ANY(:tables) AND NOT g.tgisinternal
     ORDER BY t.relname, g.tgname
""")


def snapshot(conn: Connection, metadata: MetaData | None = None) -> Snapshot:
    """Return the owned tables, columns, indexes, constraints, triggers and objects."""
    md = metadata if metadata is not None else models.metadata
    tables = sorted(models.owned_tables(md))
    params = {"tables": tables}
    result: Snapshot = {"tables": {}, "objects": {}}
    for table, num, name, type_, notnull, default in conn.execute(_COLUMNS, params):
        entry = result["tables"].setdefault(table, _empty_table())
        entry["columns"].append({"position": num, "name": name, "type": type_,
                                 "nullable": not notnull, "default": default})
    for table, name, definition in conn.execute(_INDEXES, params):
        result["tables"].setdefault(table, _empty_table())["indexes"][name] = definition
    for table, name, kind, definition, validated in conn.execute(_CONSTRAINTS, params):
        result["tables"].setdefault(table, _empty_table())["constraints"][name] = {
            "type": kind, "definition": definition, "validated": validated}
    for table, name, definition in conn.execute(_TRIGGERS, params):
        result["tables"].setdefault(table, _empty_table())["triggers"][name] = definition
    objects: tuple[SchemaObject, ...] = md.info.get("schema_objects", ())
    for obj in objects:
        if obj.kind == "trigger":
            continue  # triggers are read per table above
        result["objects"][obj.label] = autogen.live_definition(conn, obj)
    shared = conn.execute(text("SELECT to_regprocedure(:f) IS NOT NULL"),
                          {"f": f"public.{SHARED_UPDATED_AT_FUNCTION}"}).scalar()
    result["objects"][f"function public.{SHARED_UPDATED_AT_FUNCTION} exists"] = shared
    return result


def _empty_table() -> dict[str, Any]:
    return {"columns": [], "indexes": {}, "constraints": {}, "triggers": {}}
