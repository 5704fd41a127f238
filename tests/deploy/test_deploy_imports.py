"""The CDK app's modules import one way: no cycle, type-only imports included (issue 28).

import-linter's contracts cover the package (pyproject.toml); the app in deploy/cdk is
another root, so its graph is built here with grimp, import-linter's own graph library.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CDK_APP = Path(__file__).resolve().parents[2] / "deploy" / "cdk"


# In a fresh process: grimp finds the package through the import system, which would
# hand back the copy this session has already imported rather than the tree asked about.
FIND = """
import json, grimp
graph = grimp.build_graph("alquimista_deploy", cache_dir=None)
found = []
for module in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(module)):
        back = graph.find_shortest_chain(importer=imported, imported=module)
        if back:
            found.append([module, *back])
print(json.dumps(found))
"""


def cycles(root: Path) -> list[list[str]]:
    """Each import of one module by another that leads back to the first, as the chain."""
    done = subprocess.run([sys.executable, "-c", FIND], env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, check=True, timeout=120)
    found: list[list[str]] = json.loads(done.stdout)
    return found


def test_no_module_of_the_app_takes_part_in_a_cycle() -> None:
    assert cycles(CDK_APP) == []


@pytest.mark.parametrize(("module", "line"), [
    # the type-only back-references the stack's parts (parts.py) and validated.py replaced
    ("operations.py", "if TYPE_CHECKING:\n    from alquimista_deploy.stack import RunnerStack"),
    ("checks.py", "if TYPE_CHECKING:\n    from alquimista_deploy.context import DeployContext"),
])
def test_a_planted_type_only_back_reference_is_a_cycle(tmp_path: Path, module: str,
                                                       line: str) -> None:
    shutil.copytree(CDK_APP / "alquimista_deploy", tmp_path / "alquimista_deploy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "alquimista_deploy" / module
    path.write_text(f"{path.read_text()}\nfrom typing import TYPE_CHECKING\n{line}\n")
    assert any(f"alquimista_deploy.{module[:-3]}" in chain for chain in cycles(tmp_path))
