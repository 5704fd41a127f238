"""Autogenerate against a database behind head: one line at both doors that can generate
(the CLI and plain ``alembic``), saying where the database is and what to run; no file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.script import directory
from tests.support.helpers import alembic, full

DOORS = ("cli", "alembic")


def _generate(door: str, url: URL) -> tuple[int, str]:
    if door == "cli":
        done = CliRunner().invoke(main, ["revision", "--autogenerate", "-m", "behind",
                                         "--url", full(url)], catch_exceptions=False)
        return done.exit_code, done.output
    found = alembic("revision", "--autogenerate", "-m", "behind", url=url)
    return found.returncode, found.stdout + found.stderr


@pytest.mark.parametrize("door", DOORS)
def test_autogenerate_behind_head_says_where_and_what_to_run(
        door: str, empty_url: URL, scratch_scripts: Path) -> None:
    command.upgrade(empty_url, "017")
    versions = [directory.VERSIONS_LOCATION, Path(directory.__file__).parents[1] /
                "migrations" / "versions"]  # the scratch copy (CLI) and the package's (alembic)
    before = {folder: sorted(folder.glob("*.py")) for folder in versions}
    try:
        code, output = _generate(door, empty_url)
    finally:
        made = [p for folder in versions for p in folder.glob("*.py")
                if p not in before[folder]]
        for path in made:
            path.unlink()
    head = directory.script_directory().get_current_head()
    assert made == []
    assert code != 0
    assert "(a bug" not in output
    assert "Traceback" not in output
    [line] = [ln for ln in output.splitlines() if "not at head" in ln]
    assert f"the database is at 017, not at head {head}" in line
    assert "`alquimista-schema upgrade head`, or `alembic upgrade head`" in line
    assert "autogenerate compares the models with a database at head" in line
