"""Which tests read the head or the revision list: found in their source, not listed by hand.

A test reads them when its body, its parameters or its fixtures use a name imported from
tests/support/revisions.py, or a module-level name built from one (``CHAIN = REVISIONS``,
a helper function that calls ``after(...)``), or whose strings name today's head (a pin:
it must fail when the head moves, so the proof runs it). tests/script/test_next_revisions.py runs
exactly these in a tree with two more revisions, so a test added later that pins nothing
but reads the head is picked up by itself.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SOURCE = "tests.support.revisions"


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("test_"):
        return {node.name}
    return set()


def _tainted(tree: ast.Module) -> set[str]:
    """The module's names that carry the head or the revision list, to a fixed point."""
    tainted = {alias.asname or alias.name for node in tree.body
               if isinstance(node, ast.ImportFrom) and node.module == SOURCE
               for alias in node.names}
    grew = True
    while grew:
        grew = False
        for node in tree.body:
            made = _defined(node)
            if made - tainted and _names(node) & tainted:
                tainted |= made
                grew = True
    return tainted


def _pins(node: ast.AST, pinned: str | None) -> bool:
    """Whether a string in ``node`` names the revision ``pinned`` (``"021"``, ``017-to-021``)."""
    word = re.compile(rf"(?<![0-9A-Za-z_]){re.escape(pinned)}(?![0-9A-Za-z_])") if pinned else None
    return word is not None and any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and word.search(n.value)
        for n in ast.walk(node))


def readers(path: Path, pinned: str | None = None) -> list[str]:
    """The names of the test functions in ``path`` that read the head or the revisions,
    or (``pinned``: the head's id) that name it in a string: a pin the proof must catch."""
    tree = ast.parse(path.read_text())
    tainted = _tainted(tree)
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and ((_names(node) | {a.arg for a in node.args.args}) & tainted
                 or _pins(node, pinned))]


def node_ids(root: Path, *, skip: tuple[str, ...] = (), pinned: str | None = None) -> list[str]:
    """``tests/x.py::test_y`` for every reader under ``root``/tests, minus ``skip`` files."""
    found = []
    for path in sorted((root / "tests").rglob("test_*.py")):
        name = path.relative_to(root).as_posix()
        if name not in skip:
            found += [f"{name}::{test}" for test in readers(path, pinned)]
    return found
