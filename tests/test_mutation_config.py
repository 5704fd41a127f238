"""`make mutate`'s two lists stay in step (issue 28): the Makefile's mutant patterns and
pyproject's ``[tool.mutmut]`` name the same modules, and every test it selects exists. A
renamed test or module would otherwise drop out of mutation testing without a word."""

from __future__ import annotations

import re
import tomllib

from tests.support.helpers import ROOT


def mutmut() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    section: dict[str, list[str]] = config["tool"]["mutmut"]
    return section


def makefile_patterns() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    block = re.search(r"^MUTATE := (.*?)(?<!\\)\n", text, re.M | re.S)
    assert block is not None, "the Makefile has no MUTATE list"
    return re.findall(r"'([^']+)'", block[1])


def test_the_makefile_and_pyproject_name_the_same_modules() -> None:
    files = {path.removeprefix("src/").removesuffix(".py").replace("/", ".")
             for path in mutmut()["only_mutate"]}
    modules = {re.sub(r"\.(?:x[^.]*|\*)$", "", pattern) for pattern in makefile_patterns()}
    assert modules == files, sorted(modules ^ files)
    assert all((ROOT / path).is_file() for path in mutmut()["only_mutate"])


def test_every_selected_test_exists() -> None:
    selected = [arg for arg in mutmut()["pytest_add_cli_args_test_selection"]
                if arg.startswith("tests/")]
    assert selected
    gone = []
    for arg in selected:
        path, _, name = arg.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).is_file() else None
        if source is None or (name and not re.search(rf"^def {re.escape(name)}\(", source,
                                                      re.M)):
            gone.append(arg)
    assert not gone, gone
