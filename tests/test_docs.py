"""The README says what the code does: its error-code tables list every code, and only those."""

from __future__ import annotations

import json
import re
import subprocess

from sqlalchemy.engine import URL

from alquimista_schema import command, errors
from tests.support.helpers import ROOT, missing
from tests.support.revisions import HEAD

README = ROOT / "README.md"


def codes_in_the_code() -> set[str]:
    found, todo = set(), [errors.SchemaError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found | {"INTERNAL_ERROR"}  # answered for a bug (aws.runner.Runner._bug)


def test_every_error_code_is_documented_and_no_other() -> None:
    text = README.read_text()
    section = text.split("| error_code | meaning |")[1].split("\n\n")[0]
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))
    listed = set(re.findall(r"`([A-Z_]{3,})`", text.split("The CLI's tool commands")[1]
                            .split("\n\n")[0]))
    assert table | listed == codes_in_the_code()


def test_the_readmes_handler_recipe_runs_as_printed(local_database: URL) -> None:
    """The command under "The Lambda handler, on your machine", run by a shell as is."""
    section = README.read_text().split("### The Lambda handler, on your machine")[1]
    recipe = section.split("```sh\n")[1].split("```")[0].strip()
    assert recipe.startswith("DATABASE_URL=$(.venv/bin/alquimista-schema dev-db url")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        missing("the repository's .venv", "run `make setup` first")
    command.upgrade(local_database, "head")
    done = subprocess.run(["bash", "-c", recipe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["revision"]) == ("success", HEAD)
