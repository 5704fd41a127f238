"""A revision's checksum: its code as Python parses it, not as it is typed.

Flyway's ``validate`` catches a migration edited after it was applied somewhere; Alembic
records only ``version_num``. The checksum here is taken over the syntax tree without
docstrings, so rewording a docstring, a comment or the layout never changes it, while
changing a statement or an operation always does. It never depends on Alembic or
SQLAlchemy (their offline rendering changes between releases), nor on the Python
release: the tree is written out by :func:`canonical`, which skips empty fields (a
newer Python adds fields such as ``type_params``, empty for code that does not use them).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

PREFIX = "ast1:"  # the rule's version: a new rule would get a new prefix


def checksum(source: str) -> str:
    """Return the checksum of a revision's source code."""
    tree = _without_docstrings(ast.parse(source))
    return PREFIX + hashlib.sha256(canonical(tree).encode()).hexdigest()


def of_file(path: str | Path) -> str:
    return checksum(Path(path).read_text(encoding="utf-8"))


def canonical(node: Any) -> str:
    """Write a syntax tree out the same way on every Python release."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={canonical(value)}" for name, value in ast.iter_fields(node)
                  if value is not None and value != [] and name != "type_comment"]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(canonical(item) for item in node) + "]"
    return f"{type(node).__name__}:{node!r}"


_DOCUMENTED = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, _DOCUMENTED) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return tree


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))
