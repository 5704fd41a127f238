"""Below the doors nothing reads the process environment (issue 28).

A door reads it once (the CLI's commands, the Lambda's ``Runner.from_environment``, plain
alembic's env.py body) into ``settings.Settings`` or hands it on; everything below takes
what it needs as arguments. The test reads every module's source for ``os.environ`` and
``os.getenv`` and compares what it finds with the doors and the few reads that are right
where they are, each with its reason. A new read anywhere else fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import alquimista_schema

PACKAGE = Path(alquimista_schema.__file__).parent

# Modules that are doors: they read the environment, and hand it down.
DOORS = {"cli/common.py", "aws/runner.py", "runtime/environment.py"}
# (module, variable): a read below the doors that is right where it is.
ALLOWED = {
    # The AWS SDK's own variable, as botocore reads it (the client's region).
    ("connect/clients.py", "AWS_REGION"): "the AWS SDK's own variable",
    ("tooling/invoke.py", "AWS_REGION"): "the AWS SDK's own variable",
    # The local database's own switches: read by the one module that starts it, for the
    # CLI, plain alembic and the tests alike (no run setting: no Lambda has them).
    ("connect/local.py", "ALQUIMISTA_DEVDB"): "the local database's switch",
    ("connect/local.py", "ALQUIMISTA_DEVDB_NAME"): "the local database's name",
    ("connect/local.py", "ALQUIMISTA_DEVDB_DIR"): "the local database's folder",
    ("connect/local.py", "XDG_CACHE_HOME"): "where a user's caches live (XDG)",
    ("connect/local.py", "PATH"): "the PATH handed to pg_ctl",
    ("connect/pgbin.py", "ALQUIMISTA_PG_BINDIR"): "where PostgreSQL's binaries are",
    ("connect/pgbin.py", "ALQUIMISTA_DEVDB_USER"): "who runs the local server as root",
    # The bundle tool's own inputs (a developer's tool, not a run).
    ("tooling/bundle.py", "ALQUIMISTA_TARGET_PYTHON"): "the Python the bundle is built for",
    ("tooling/bundle.py", "PYENV_ROOT"): "where pyenv keeps its Pythons",
}


def _reads(tree: ast.AST) -> set[str]:
    """The variables a module reads: ``os.environ.get("X")``, ``os.environ["X"]``,
    ``os.getenv("X")``; ``*`` for the environment taken whole."""
    found: set[str] = set()
    whole: set[int] = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value if node.func.attr == "get" else node.func
            if _is_environ(target) or (node.func.attr == "getenv" and _is_os(node.func.value)):
                key = node.args[0] if node.args else None
                whole.add(id(target))
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = node.slice
            whole.add(id(node.value))
        if key is not None:
            found.add(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str)
                      else "*")
    found |= {"*" for node in ast.walk(tree) if _is_environ(node) and id(node) not in whole}
    return found


def _is_os(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _is_os(node.value)


def test_nothing_below_the_doors_reads_the_environment() -> None:
    below: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module in DOORS:
            continue
        below |= {(module, name) for name in _reads(ast.parse(path.read_text("utf-8")))}
    assert below == set(ALLOWED), sorted(below ^ set(ALLOWED))


def test_the_reader_sees_each_way_of_reading() -> None:
    """The scan is only as good as its reader: each form it must see, it sees."""
    source = ("import os\na = os.environ.get('A')\nb = os.environ['B']\nc = os.getenv('C')\n"
              "d = os.environ\ne = os.environ.get(name)\n")
    assert _reads(ast.parse(source)) == {"A", "B", "C", "*"}
    assert _reads(ast.parse("import os\nx = os.path.join('a')\n")) == set()
