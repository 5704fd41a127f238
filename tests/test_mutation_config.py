"""`make mutate`'s list is one list that stays true (issue 28): pyproject's
``[tool.mutmut]`` names the modules, ``[tool.alquimista-schema.mutate-only]`` narrows two
of them to functions that exist, and every test it selects exists. A renamed function,
test or module would otherwise drop out of mutation testing without a word."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
import tomllib
from typing import Any

from mutmut.mutation.trampoline_templates import mangle_function_name

from tests.mutation_scores import patterns
from tests.support.helpers import ROOT


def tool() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    section: dict[str, Any] = config["tool"]
    return section


def mangled(path: str) -> list[str]:
    """mutmut's name (after the module's) of every function and method of ``path``."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = [mangle_function_name(name=node.name, class_name=None) for node in tree.body
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        names += [mangle_function_name(name=node.name, class_name=cls.name)
                  for node in cls.body if isinstance(node, ast.FunctionDef)]
    return names


def test_every_module_exists_and_every_narrowing_names_functions_it_has() -> None:
    only = tool()["mutmut"]["only_mutate"]
    assert only
    assert all((ROOT / path).is_file() for path in only)
    narrowed = tool()["alquimista-schema"]["mutate-only"]
    assert set(narrowed) <= set(only), sorted(set(narrowed) - set(only))
    matchless = [(path, name) for path, names in narrowed.items() for name in names
                 if not fnmatch.filter(mangled(path), name)]
    assert not matchless


def test_the_patterns_are_every_module_whole_or_as_narrowed() -> None:
    made = patterns()
    assert "alquimista_schema.runtime.guards.*" in made
    assert "alquimista_schema.connect.secrets.x_parse_secret*" in made
    assert "alquimista_schema.connect.secrets.*" not in made  # narrowed, never whole
    assert len(made) == len(set(made))


def test_make_mutate_runs_mutmut_with_those_patterns() -> None:
    dry = subprocess.run(["make", "-n", "-s", "mutate", f"BIN={sys.prefix}/bin"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    [line] = [row for row in dry.splitlines() if "mutmut run" in row]
    assert re.findall(r"'([^']+)'", line) == patterns()


def test_every_selected_test_exists() -> None:
    selected = [arg for arg in tool()["mutmut"]["pytest_add_cli_args_test_selection"]
                if arg.startswith("tests/")]
    assert selected
    gone = []
    for arg in selected:
        path, _, name = arg.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).is_file() else None
        if source is None or (name and not re.search(rf"^def {re.escape(name)}\(", source,
                                                      re.M)):
            gone.append(arg)
    assert not gone, gone
