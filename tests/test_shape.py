"""The package's shape, checked: imports point one way, modules stay small.

Deferred imports (inside functions) count too: a cycle hidden behind one still couples
the two modules both ways. Typing-only imports count as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "alquimista_schema"
NAME = "alquimista_schema"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name under it (``runtime.skeleton``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts or path.stem == "__main__":
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every package module ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == NAME or node.module.startswith(NAME + ".")):
            base = node.module[len(NAME) + 1:]
            for alias in node.names:
                dotted = f"{base}.{alias.name}" if base else alias.name
                found.add(dotted if dotted in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name[len(NAME) + 1:] for a in node.names
                      if a.name.startswith(NAME + ".")}
    own = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return {m for m in found if m in known} - {own, own.removesuffix(".__init__")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_point_one_way() -> None:
    known = set(modules())
    graph = {name: imports_of(path, known) for name, path in modules().items()}
    assert graph["aws.runner" if "aws.runner" in graph else "aws.events"], \
        "the graph is empty: the import scan is broken"
    assert cycles(graph) == []


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
