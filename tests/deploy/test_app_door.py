"""The CDK app as a person runs it: quiet when it works, one line when it cannot start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_cdk import node  # noqa: F401 (fixture)
from tests.deploy.values import CDK_APP, context, make_bundle


def test_outside_the_virtualenv_it_says_how_to_set_up(tmp_path: Path) -> None:
    """A Python without the project's packages (the base interpreter of the venv)."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.exists() or Path(sys.prefix) == Path(sys.base_prefix):
        pytest.skip("no separate base interpreter here")
    found = subprocess.run([str(base), "-I", "app.py"], cwd=CDK_APP, capture_output=True,
                           text=True, timeout=60, check=False)
    assert found.returncode == 1
    assert "Traceback" not in found.stderr
    [line] = found.stderr.splitlines()
    assert line.startswith("error: ")
    assert "is not installed for" in line
    assert "`make setup`" in line
    assert ". .venv/bin/activate" in line


def test_a_synthesis_prints_no_node_banner(node: str, tmp_path: Path) -> None:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env.update(CDK_OUTDIR=str(tmp_path / "out"),
               CDK_CONTEXT_JSON=json.dumps(context(make_bundle(tmp_path))))
    found = subprocess.run([sys.executable, "app.py"], cwd=CDK_APP, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert found.returncode == 0, found.stderr
    assert "!!" not in found.stdout + found.stderr
    assert (tmp_path / "out" / "manifest.json").exists()
