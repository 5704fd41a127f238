"""The cold no-op path loads no heavy library when it is imported (issue 28).

import-linter's cold-path contract (pyproject.toml) sets ``allow_indirect_imports``: its
modules may reach SQLAlchemy, Alembic and boto3 through a deferred import (inside a
function, taken only when a run needs them). So the contract alone would not see
``command.py`` importing the run skeleton at module level. This test follows what
importing each of the contract's modules executes: module-level imports (not those inside a
function, nor under ``if TYPE_CHECKING``), parent packages included, through the package,
and finds none of the contract's forbidden modules. tests/runtime/test_probe.py proves the
same in a fresh process at run time.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.helpers import ROOT

ROOTS = {"alquimista_schema": ROOT / "src" / "alquimista_schema",
         "lambda_entry": ROOT / "lambda_entry"}


def contract() -> tuple[list[str], list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [cold] = [c for c in config["tool"]["importlinter"]["contracts"]
              if c["name"].startswith("The cold no-op path")]
    assert cold.get("allow_indirect_imports") is True  # what makes this test needed
    return cold["source_modules"], cold["forbidden_modules"]


def path_of(module: str) -> Path | None:
    top, *rest = module.split(".")
    if top not in ROOTS:
        return None
    base = ROOTS[top].joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _executed(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not in a function or a class body's
    methods, nor under ``if TYPE_CHECKING``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from _executed(node.body)
            yield from _executed(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, *[h.body for h in node.handlers], node.orelse,
                         node.finalbody):
                yield from _executed(part)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _executed(node.body)


def imported_at_load(module: str, source: str) -> set[str]:
    """Every module name ``module``'s load imports, parent packages included."""
    found: set[str] = set()
    path = path_of(module)
    is_package = path is not None and path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in _executed(ast.parse(source).body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names
                             if path_of(f"{base}.{a.name}"))]
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def reached(starts: list[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each module reached by loading ``starts``, with the module that imported it."""
    overrides = overrides or {}
    seen: dict[str, str] = {start: "(start)" for start in starts}
    queue = list(starts)
    while queue:
        module = queue.pop()
        path = path_of(module)
        if path is None:
            continue
        source = overrides.get(module) or path.read_text(encoding="utf-8")
        for name in imported_at_load(module, source) - set(seen):
            seen[name] = module
            queue.append(name)
    return seen


def heavy(seen: Mapping[str, str], forbidden: list[str]) -> dict[str, str]:
    return {name: by for name, by in seen.items()
            if any(name == f or name.startswith(f"{f}.") for f in forbidden)}


def test_loading_the_cold_modules_imports_nothing_heavy() -> None:
    starts, forbidden = contract()
    seen = reached(starts)
    assert len([m for m in seen if path_of(m)]) >= len(starts)  # the walk found the package
    assert heavy(seen, forbidden) == {}


def test_a_module_level_import_of_the_skeleton_in_command_is_caught() -> None:
    """What the contract lets through (allow_indirect_imports), this test does not."""
    starts, forbidden = contract()
    source = (ROOTS["alquimista_schema"] / "command.py").read_text(encoding="utf-8")
    planted = source.replace("from __future__ import annotations\n",
                             "from __future__ import annotations\n"
                             "from alquimista_schema.runtime import skeleton\n", 1)
    assert planted != source
    found = heavy(reached(starts, {"alquimista_schema.command": planted}), forbidden)
    assert "sqlalchemy" in found


def test_a_deferred_or_type_only_import_is_not_one_a_load_runs() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy\n"
              "def f() -> None:\n    import alembic\n")
    assert imported_at_load("alquimista_schema.x", source) == {"typing"}
