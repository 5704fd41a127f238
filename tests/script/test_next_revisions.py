"""The next revision just works (issue 30): generated as the README says, it passes lint and
the tests, with no other edit.

In a copy of the checkout (the files git lists: tracked, and new ones not ignored), two model
changes become two revisions the way "Changing the schema" says a developer makes them:
change the models, ``alquimista-schema revision --autogenerate -m ...`` against a database at
head, then ``upgrade`` and ``check``. The copy's own CLI runs (``PYTHONPATH=<copy>/src``, checked
to import the copy's package, not the editable install). Then, in the copy: ruff (its
pyproject) over what generating wrote, and over the whole tree (nothing the checkout itself
does not report: other work in progress may), mypy over the new files, the layer rules
(lint-imports), and the tests that read the revisions.

The tests run there are every test that reads the head or the revision list
(tests/support/readers.py finds them in their source: about 120, the three doors included);
the rest of the suite does not depend on which revisions exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.support.helpers import ROOT, full, missing
from tests.support.readers import node_ids
from tests.support.revisions import HEAD, NEXT

pytestmark = pytest.mark.slow


MODELS = Path("src/alquimista_schema/schema/models.py")
VERSIONS = Path("src/alquimista_schema/migrations/versions")
# Two model changes, each where no test edits the models itself (tests/runtime/
# test_environment.py and tests/autogenerate/test_compare.py add columns to dry_run_log).
CHANGES = [
    ("add lead apelido",
     '    contato_nome: Mapped[str | None] = mapped_column(String(255))\n',
     '    contato_nome: Mapped[str | None] = mapped_column(String(255))\n'
     '    apelido: Mapped[str | None] = mapped_column(Text)\n'),
    ("add lead email observacao",
     '    email: Mapped[str] = mapped_column(String(255))\n',
     '    email: Mapped[str] = mapped_column(String(255))\n'
     '    observacao: Mapped[str | None] = mapped_column(Text)\n'),
]


def checkout_copy(target: Path) -> None:
    """The files a commit of this checkout would hold, copied to ``target``."""
    if shutil.which("git") is None:
        missing("git", "install git")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        missing("a git checkout", "run from a clone of the repository")
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = ROOT / name
        if source.is_file():  # listed but deleted in the working tree: not copied
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def ruff_findings(folder: Path) -> set[str]:
    """ruff over a whole tree, its pyproject's rules: one line per finding, paths relative."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", "."], cwd=folder, capture_output=True,
                          text=True, timeout=300, check=False)
    return {line for line in done.stdout.splitlines() if re.match(r"\S+:\d+:\d+: ", line)}


def test_two_generated_revisions_pass_lint_and_the_tests(empty_url: URL,
                                                         tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    checkout_copy(tree)
    # Not CI: the copy has no .venv of its own and lives in a folder only root can read, so
    # the few tests that need those skip there (under CI=true they would fail); they run
    # in the checkout itself.
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "PYTHONPATH", "CI")}
    base.update(PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}")

    def run(*args: str, timeout: float = 180,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=tree, env={**base, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def cli(*args: str) -> str:
        done = run(sys.executable, "-m", "alquimista_schema", *args,
                   env={"ALQUIMISTA_DEVDB": "off"})
        assert done.returncode == 0, (args, done.stdout + done.stderr)
        return done.stdout

    where = run(sys.executable, "-c",
                "import alquimista_schema; print(alquimista_schema.__file__)")
    assert where.stdout.strip() == str(tree / "src" / "alquimista_schema" / "__init__.py"), where

    url = full(empty_url)
    cli("upgrade", "--url", url)  # a database at head, as the README asks
    second = f"{int(NEXT) + 1:03d}"
    made: list[Path] = []
    for (message, old, new), rev in zip(CHANGES, (NEXT, second), strict=True):
        models = tree / MODELS
        source = models.read_text()
        assert source.count(old) == 1, old
        models.write_text(source.replace(old, new))
        wrote = cli("revision", "--autogenerate", "-m", message, "--url", url)
        path = tree / VERSIONS / f"{rev}_{message.replace(' ', '_')}.py"
        lint_json = tree / VERSIONS.parent / "lint.json"
        assert wrote.splitlines() == [f"wrote {path}",
                                      f"linted it into {lint_json} (commit both)"], wrote
        assert "op.add_column(" in path.read_text()
        assert "op.drop_column(" in path.read_text()
        made.append(path)
        cli("upgrade", "--url", url)
        cli("check", "--url", url)
    manifest = json.loads((tree / VERSIONS.parent / "manifest.json").read_text())
    assert manifest["head"] == second
    assert {NEXT, second} <= set(json.loads(lint_json.read_text()))
    heads = run(sys.executable, "-c", "from tests.support.revisions import HEAD, REVISIONS; "
                                      "print(HEAD, len(REVISIONS))")
    assert heads.stdout.split()[0] == second, heads.stdout + heads.stderr

    for changed in (*made, tree / MODELS):  # what generating wrote: clean
        ruff = run(sys.executable, "-m", "ruff", "check", "--no-cache", str(changed))
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    # the whole tree: nothing the checkout itself does not already report
    assert ruff_findings(tree) - ruff_findings(ROOT) == set()
    mypy = run(sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"),
               *(str(p.relative_to(tree)) for p in made), timeout=300)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    layers = run(str(Path(sys.executable).parent / "lint-imports"), "--no-cache")
    assert layers.returncode == 0, layers.stdout[-3000:] + layers.stderr

    selection = node_ids(tree, skip=(Path(__file__).relative_to(ROOT).as_posix(),),
                         pinned=HEAD)  # the head before the two new revisions
    assert len(selection) >= 100, selection  # the finder still finds what it found
    tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection,
                timeout=1200)
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    print(f"in the copy, head {second}: {summary}")
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    skipped = re.findall(r"^SKIPPED \[\d+\] (\S+?):\d+", tests.stdout, re.M)
    assert set(skipped) <= {"tests/connect/test_local.py", "tests/support/helpers.py"}, \
        tests.stdout[-3000:]
