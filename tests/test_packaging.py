"""The installed package carries its revisions and never lets a folder shadow `alembic`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.support.revisions import COUNT, HEAD

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True)
    [built] = out.glob("alquimista_schema-*.whl")
    return built


def test_wheel_carries_revisions_and_no_top_level_alembic(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "alembic" not in tops
    assert tops <= {"alquimista_schema", *(t for t in tops if t.endswith(".dist-info"))}
    for required in ("alquimista_schema/py.typed", "alquimista_schema/migrations/env.py",
                     "alquimista_schema/migrations/script.py.mako",
                     "alquimista_schema/migrations/versions/017_dry_run_log.py"):
        assert required in names


def test_side_by_side_install_upgrades_from_any_directory(wheel: Path, tmp_path: Path,
                                                         empty_url: URL) -> None:
    """Like a Lambda bundle: package and dependencies in one folder, nothing else on the path."""
    target = tmp_path / "bundle"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile",
                    "--target", str(target), str(wheel)], check=True)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(target), "ALQUIMISTA_DEVDB": "off"}
    probe = subprocess.run(
        [sys.executable, "-S", "-c",
         "import alembic.command, alquimista_schema; "
         "print(alembic.__file__); print(alquimista_schema.__file__)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    alembic_file, package_file = probe.stdout.split()
    assert alembic_file.startswith(str(target))
    assert package_file.startswith(str(target))

    url = empty_url.render_as_string(hide_password=False)
    for cwd in (tmp_path, ROOT, target):
        done = subprocess.run(
            [sys.executable, "-S", "-m", "alquimista_schema", "upgrade", "head", "--url", url],
            cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert f"applied {COUNT} revision(s)" in subprocess.run(
        [sys.executable, "-S", "-m", "alquimista_schema", "downgrade", "base", "--url", url],
        cwd=tmp_path, env=env, capture_output=True, text=True).stdout.replace(
            "reverted", "applied")


def test_fresh_virtualenv_console_script(wheel: Path, tmp_path: Path, head_url: URL) -> None:
    venv = tmp_path / "venv"
    # A fresh venv sees nothing of ours: with PYTHONPATH=src, pip would take the source
    # tree's egg-info for an installed alquimista-schema and install nothing.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   env=clean)
    done = subprocess.run(
        [str(venv / "bin" / "alquimista-schema"), "current", "--url",
         head_url.render_as_string(hide_password=False)],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{HEAD} (head)"
