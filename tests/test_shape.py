"""The package's shape: modules stay small, and the layer rules can fail.

The rules between layers (imports point down, no cycle at any level, the Lambda side
never reaches the CLI, the cold no-op path never imports SQLAlchemy, Alembic or boto3)
are import-linter contracts in pyproject.toml, run by ``make lint``. Here: what
import-linter does not check, and proof that its contracts are not vacuous.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "alquimista_schema"
MAX_LINES = 400
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py") if "versions" not in p.parts}
    assert len(sizes) > 30, "the scan found too few modules: it is broken"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"),
                           "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


PLANTED = {
    # an upward import: the run machinery reaching for the CLI
    "runtime/run.py": ("from alquimista_schema.cli import commands  # noqa\n",
                       "Layers only point down"),
    # a cycle inside one layer
    "script/manifest.py": ("from alquimista_schema.script import authoring  # noqa\n",
                           "No import cycle"),
    # the Lambda side reaching for click
    "aws/protocol.py": ("import click  # noqa\n", "The Lambda side never imports"),
    # the cold no-op path importing SQLAlchemy itself, even deferred
    "runtime/probe.py": ("def _x() -> None:\n    import sqlalchemy  # noqa\n",
                         "The cold no-op path never imports"),
}


@pytest.mark.skipif(not LINT_IMPORTS.exists() and os.environ.get("CI") != "true",
                    reason="import-linter is not installed (under CI=true: a failure)")
def test_the_contracts_hold_and_each_one_can_break(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "lambda_entry", tree / "lambda_entry")
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    kept = _lint_imports(tree)
    assert kept.returncode == 0, kept.stdout
    for module, (line, contract) in PLANTED.items():
        path = tree / "src" / "alquimista_schema" / module
        original = path.read_text()
        path.write_text(original + "\n" + line)
        broken = _lint_imports(tree)
        path.write_text(original)
        assert broken.returncode != 0, f"planting in {module} broke nothing"
        failed = broken.stdout.split("Broken contracts", 1)[-1]
        assert contract in failed, (module, broken.stdout[-2000:])
