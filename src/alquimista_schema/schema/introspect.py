"""A comparable picture of the objects the package owns in a live database.

Everything is read from the catalogs in PostgreSQL's own canonical text
(``format_type``, ``pg_get_indexdef``, ``pg_get_viewdef``, ``pg_get_functiondef``...),
comments included, so two databases built by different routes (the legacy SQL
files, the revisions) compare equal exactly when their owned objects are the same.
Objects the package does not own are never read. It imports nothing of the package
but the models and the schema-object declarations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from alquimista_schema.schema import models
from alquimista_schema.schema.objects import SchemaObject

Snapshot = dict[str, Any]

_TABLES = text("""
    SELECT c.relname, obj_description(c.oid, 'pg_class')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables)
     ORDER BY c.relname
""")

_COLUMNS = text("""
    SELECT c.relname,
           -- the position among the live columns, not attnum: a dropped column keeps its
           -- attnum, so a drop and re-add would never compare equal to a fresh build
           row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
           a.attname, format_type(a.atttypid, a.atttypmod),
           a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(:tables)
       AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum
""")

# Indexes that back a primary key, unique or exclusion constraint are the
# constraint's: they are compared (and reported) once, as the constraint.
_INDEXES = text("""
    SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND t.relname = ANY(:tables)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                        WHERE k.conindid = i.oid AND k.contype IN ('p', 'u', 'x'))
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

_VIEW = text("""
    SELECT pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class'),
           ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'v' AND c.relname = :name AND n.nspname = current_schema()
""")

_FUNCTION = text("""
    SELECT pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc'), l.lanname,
           CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable'
                ELSE 'volatile' END,
           pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.oid = to_regprocedure(:name)
""")

_TRIGGER = text("""
    SELECT pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger')
      FROM pg_trigger t
     WHERE NOT t.tgisinternal AND t.tgname = :name AND t.tgrelid = to_regclass(:table)
""")


def snapshot(conn: Connection, metadata: MetaData | None = None) -> Snapshot:
    """Return the owned tables (columns, indexes, constraints, triggers, comments) and objects."""
    md = metadata if metadata is not None else models.metadata
    params = {"tables": sorted(models.owned_tables(md))}
    tables: dict[str, Any] = {}
    for table, comment in conn.execute(_TABLES, params):
        tables[table] = {"comment": comment, "columns": [], "indexes": {}, "constraints": {},
                         "triggers": {}}
    for table, num, name, type_, notnull, default, comment in conn.execute(_COLUMNS, params):
        tables[table]["columns"].append({"position": num, "name": name, "type": type_,
                                         "nullable": not notnull, "default": default,
                                         "comment": comment})
    for table, name, definition in conn.execute(_INDEXES, params):
        tables[table]["indexes"][name] = definition
    for table, name, kind, definition, validated in conn.execute(_CONSTRAINTS, params):
        tables[table]["constraints"][name] = {"type": kind, "definition": definition,
                                              "validated": validated}
    for table, name, definition in conn.execute(_TRIGGERS, params):
        tables[table]["triggers"][name] = definition
    declared: tuple[SchemaObject, ...] = md.info.get("schema_objects", ())
    objects = {obj.label: object_state(conn, obj) for obj in declared if obj.kind != "trigger"}
    return {"tables": tables, "objects": objects}


def object_state(conn: Connection, obj: SchemaObject) -> dict[str, Any] | None:
    """Return a view's, function's or trigger's canonical state, or None when missing."""
    reader = _READERS[obj.kind]
    return reader(conn, obj.name)


def _view(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(_VIEW, {"name": name}).first()
    if row is None:
        return None
    definition, comment, columns = row
    return {"definition": definition, "comment": comment, "columns": list(columns),
            "targets": select_list(definition)}


def _function(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(_FUNCTION, {"name": name}).first()
    if row is None:
        return None
    definition, comment, language, volatility, arguments, result, body = row
    return {"definition": definition, "comment": comment, "language": language,
            "volatility": volatility, "arguments": arguments, "result": result,
            "body": body}


def _trigger(conn: Connection, name: str) -> dict[str, Any] | None:
    trigger, _, table = name.partition(" ON ")
    row = conn.execute(_TRIGGER, {"name": trigger, "table": table}).first()
    return None if row is None else {"definition": row[0], "comment": row[1]}


_READERS = {"view": _view, "function": _function, "trigger": _trigger}


def select_list(viewdef: str) -> list[str]:
    """Split a canonical view definition's top-level select list into its expressions.

    ``pg_get_viewdef`` output is PostgreSQL's own normal form, so splitting it at
    commas outside parentheses and quotes, up to the top-level ``FROM``, is exact.
    """
    sql = " ".join(viewdef.split())
    start = sql.upper().find("SELECT ") + len("SELECT ")
    items, depth, quote, begin = [], 0, "", start
    i = start
    while i < len(sql):
        ch = sql[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch == ",":
            items.append(sql[begin:i].strip())
            begin = i + 1
        elif depth == 0 and sql.startswith(" FROM ", i):
            break
        i += 1
    items.append(sql[begin:i].strip().rstrip(";"))
    return items


def owned_objects_present(conn: Connection, metadata: MetaData | None = None) -> list[str]:
    """Name the package's tables, views and functions present in the current schema."""
    md = metadata if metadata is not None else models.metadata
    present = [row[0] for row in conn.execute(_TABLES, {"tables": sorted(models.owned_tables(md))})]
    declared: tuple[SchemaObject, ...] = md.info.get("schema_objects", ())
    present += [obj.label for obj in declared
                if obj.kind != "trigger" and object_state(conn, obj) is not None]
    return present


def invalid_indexes(conn: Connection) -> list[tuple[str, str]]:  # (index, table)
    """(index, table) of every INVALID index in the current schema: what a failed or
    cancelled ``CREATE INDEX CONCURRENTLY`` leaves behind. PostgreSQL keeps it (and
    maintains it on every write) but never uses it, and ``CREATE INDEX ... IF NOT EXISTS``
    then passes over it as if it were built."""
    rows = conn.execute(text(
        "SELECT c.relname, t.relname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE NOT i.indisvalid AND c.relnamespace = to_regnamespace(current_schema()) "
        "ORDER BY c.relname"))
    return [(str(index), str(table)) for index, table in rows]
