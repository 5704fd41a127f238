"""Mutation scores per module, from mutmut's results (``make mutate`` prints them).

Usage: ``python tests/mutation_scores.py`` from the folder that holds ``mutants/``.
Only the mutants ``make mutate`` runs are counted: :func:`patterns`, made from
pyproject.toml (two modules are mutated in part). Lists each mutant that survived, so
each one gets a test or a reason it is equivalent. ``--patterns`` prints the patterns,
shell-quoted, for ``mutmut run``.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def patterns(pyproject: Path = PYPROJECT) -> list[str]:
    """mutmut's mutant-name patterns for ``make mutate``: every module of only_mutate whole,
    or the functions its ``mutate-only`` entry names."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]
    only: dict[str, list[str]] = config["alquimista-schema"]["mutate-only"]
    found = []
    for path in config["mutmut"]["only_mutate"]:
        module = path.removeprefix("src/").removesuffix(".py").replace("/", ".")
        found += [f"{module}.{name}" for name in only.get(path, ["*"])]
    return found


def scores(patterns: list[str], status_by_exit_code: dict[int | None, str],
           root: Path = Path("mutants")) -> tuple[
        dict[str, Counter[str]], list[str]]:
    """Return each module's count of mutants by status, and the survivors' names."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    for meta in sorted(root.rglob("*.py.meta")):
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            if not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            status = status_by_exit_code[code]
            module = name.partition(".x")[0]
            by_module[module][status] += 1
            if status == "survived":
                survivors.append(name)
    return dict(by_module), survivors


def main(args: list[str]) -> int:
    if args == ["--patterns"]:
        print(" ".join(shlex.quote(p) for p in patterns()))
        return 0
    # mutmut's own module: imported only to count (``--patterns`` runs before it is built).
    from mutmut.stats import status_by_exit_code
    by_module, survivors = scores(patterns(), status_by_exit_code)
    print(f"{'module':<40} {'killed':>7} {'survived':>9} {'other':>6} {'total':>6}")
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        other = total - counts["killed"] - counts["survived"]
        print(f"{module:<40} {counts['killed']:>7} {counts['survived']:>9} {other:>6} "
              f"{total:>6}")
    for name in survivors:
        print(f"survived: {name}  (mutmut show {name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
