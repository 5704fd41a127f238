"""The shipped revisions' checksums, pinned, and the same under every Python we target.

A checksum recorded by the CLI on one Python is verified by the Lambda on another
(3.12): a change of the rule (``canonical(tree)`` to ``ast.dump(tree)``, whose output
differs between releases) would make every applied revision "edited" after an upgrade of
either. Every other checksum test compares two values the same code computed; this one
holds the values themselves. A new revision is not listed here until it ships: the list
is of revisions that exist, never of all of them.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from alquimista_schema.script import checksums, directory
from alquimista_schema.tooling.bundle import find_interpreter
from tests.support.helpers import ROOT, missing

SHIPPED = {
    "lead_ingestion": "6f6498bf4ae9812ab0707d429d464b87b22d46968d711f37963d8db916d1bd7c",
    "017": "1897e7cc562032cb413b62d2a95983c2af63ae37709f093bebeb34797cb49024",
    "018": "06c39db9af8daa12fe1f4dd8389688d90dd034ce730102ec5f388adf8035c7be",
    "019": "2edff915d7003efd768ba2a0b6a4c253a6cb6eb2c73adf82c3e1b5168ecbb641",
    "020": "82c3872968ac557e5014a4467c7d7c10881c99783366e824b529386b069374f3",
    "021": "2a639ea892f82b621985ebce217d578b36fff5d18d4df05ad8fc7ba792f1dc69",
}
# The Lambda's runtime (the bundle's default), and the releases on either side of it.
PYTHONS = ("3.11", "3.12", "3.13")
LAMBDA_PYTHON = "3.12"

# Runs script/checksums.py alone (it needs only the standard library) under another Python.
CHILD = """
import json, runpy, sys
rule = runpy.run_path(sys.argv[1])
print(json.dumps({path: rule["of_file"](path) for path in sys.argv[2:]}))
"""


def _paths() -> dict[str, str]:
    script = directory.script_directory()
    return {rev: str(script.get_revision(rev).path) for rev in SHIPPED}


def test_each_shipped_revision_has_its_pinned_checksum() -> None:
    for rev, path in _paths().items():
        assert checksums.of_file(path) == checksums.PREFIX + SHIPPED[rev], rev


@pytest.mark.parametrize("version", PYTHONS)
def test_the_checksums_are_the_same_under_each_python(version: str) -> None:
    python = find_interpreter(version)
    if python is None:
        if version == LAMBDA_PYTHON:
            missing(f"Python {version} (the Lambda's)", "install it (pyenv install 3.12)")
        pytest.skip(f"Python {version} is not installed here")
    paths = _paths()
    done = subprocess.run([python, "-c", CHILD, str(ROOT / "src" / "alquimista_schema" /
                                                   "script" / "checksums.py"),
                           *paths.values()], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert {rev: seen[path] for rev, path in paths.items()} == {
        rev: checksums.PREFIX + value for rev, value in SHIPPED.items()}
