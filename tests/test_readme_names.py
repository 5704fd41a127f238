"""Every name the READMEs give exists (issue 28): each file path, ``alquimista-schema`` and
``make`` command, environment variable or error code, and CDK context key, as the code
spells it today. A rename that leaves a README behind fails here, naming what is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alquimista_schema.cli import main
from tests.support.helpers import ROOT

READMES = [ROOT / "README.md", ROOT / "deploy" / "cdk" / "README.md",
           ROOT / "docs" / "architecture.md", ROOT / "bench" / "README.md"]
# where a path a README gives may start: the repository, the package, the README's folder
BASES = [ROOT, ROOT / "src", ROOT / "src" / "alquimista_schema"]
CODE = [*(ROOT / "src").rglob("*.py"), *(ROOT / "lambda_entry").rglob("*.py"),
        *(ROOT / "deploy" / "cdk").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
        ROOT / "Makefile", ROOT / "pyproject.toml", ROOT / "deploy" / "cdk" / "cdk.json"]
_TICKED = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"^\.?[A-Za-z_][\w.-]*(?:/[\w.-]*)+$"
                   r"|^[A-Za-z_][\w-]*\.(?:py|json|md|ini|toml|mako)$")
# Paths a README names that a command makes (or an example would), not files of the repo.
MADE = {
    "dist/runner.zip": "`alquimista-schema bundle` writes it",
    "bench/results/latest.json": "`make bench` writes it",
    "bench/results/online_safety.json": "`make bench-online` writes it",
    "deploy/cdk/cdk.context.json": "the user's own CDK context file, if they keep one",
    "validation-report.json": "cdk-nag writes it beside the template",
    ".venv/framework-sdk": "`make test` installs it",
    "022_add_canal_detalhe.py": "an example of the next revision's name",
    "src/alquimista_schema/migrations/versions/NNN_what_changed.py": "the next revision's name",
    "psycopg2/_psycopg.cpython-313-x86_64-linux-gnu.so": "an example of a wrong bundle's file",
}
# AWS's and the CDK's own names, which the READMEs name and our code need not spell.
THEIRS = {"PRIVATE_WITH_EGRESS": "the CDK's subnet type the stack does not ask for",
          "UPDATE_ROLLBACK_FAILED": "a CloudFormation stack status"}
REPO_FILES = {path.name for path in ROOT.rglob("*")
              if ".venv" not in path.parts and ".git" not in path.parts}
_CAPS = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_CAMEL = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")


def ticked(readme: Path) -> set[str]:
    return set(_TICKED.findall(readme.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def code() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in CODE)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_named_exists(readme: Path) -> None:
    paths = {t.split(":")[0].rstrip(",") for t in ticked(readme) if _PATH.match(t.split(":")[0])}
    gone = sorted(p for p in paths - set(MADE) if not any(
        (base / p).exists() for base in [*BASES, readme.parent])
        and ("/" in p.rstrip("/") or p not in REPO_FILES))
    assert not gone, f"{readme.name} names paths that do not exist: {gone}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_named_exists(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    ours = set(re.findall(r"(?:^|`)alquimista-schema ([a-z][a-z-]+)", text, re.M))
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    made = set(re.findall(r"`make ([a-z][\w-]*)", text))
    assert not ours - set(main.commands), sorted(ours - set(main.commands))
    assert not made - targets, sorted(made - targets)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_variable_code_and_context_key_named_is_in_the_code(
        readme: Path, code: str) -> None:
    """An upper-case name (an environment variable, an error code, a module constant) or
    a camelCase one (a CDK context key, an event key) that no code spells any more."""
    names = {t for t in ticked(readme) if _CAPS.match(t) or _CAMEL.match(t)} - set(THEIRS)
    gone = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", code))
    assert not gone, f"{readme.name} names what no code spells: {gone}"


def test_the_reader_finds_what_it_must() -> None:
    """The patterns see the forms the READMEs use, and a name that is gone."""
    assert _PATH.match("runtime/skeleton.py")
    assert _PATH.match("alembic.ini")
    assert _PATH.match("tests/legacy/")
    assert not _PATH.match("--lock-timeout")
    assert _CAPS.match("ALQUIMISTA_LOCK_TIMEOUT")
    assert not _CAPS.match("OK")
    assert _CAMEL.match("dbClusterIdentifier")
    assert not _CAMEL.match("upgrade")
