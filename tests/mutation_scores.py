"""Mutation scores per module, from mutmut's results (``make mutate`` prints them).

Usage: ``python tests/mutation_scores.py PATTERN...`` from the folder that holds
``mutants/``, with the mutant-name patterns ``mutmut run`` was given. Only mutants those
patterns name are counted (the Makefile mutates two modules in part). Lists each mutant
that survived, so each one gets a test or a reason it is equivalent.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code


def scores(patterns: list[str], root: Path = Path("mutants")) -> tuple[
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


def main(patterns: list[str]) -> int:
    by_module, survivors = scores(patterns)
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
