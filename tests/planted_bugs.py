"""Plant issue 23's bugs one at a time in a copy of the tree and run the tests that
must catch each (``make planted``; minutes, not in CI).

Each bug is one textual edit, the way a tired developer would write it. For each, the
tree is copied, the edit applied (refusing to run if the text to replace is not there
exactly once, so a refactor cannot silently make a plant a no-op), and pytest is run
from the copy with the copy first on ``PYTHONPATH`` (the subprocess doors inherit it).
A bug is *caught* when pytest fails; the script prints the failing tests' names and
exits 1 if any bug survived.

Usage: ``python tests/planted_bugs.py [NAME...]`` from the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Bug(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = (
    Bug("prod-guard-any-confirm", "src/alquimista_schema/runtime/guards.py",
        'environment == "prod" and confirm != target:',
        'environment == "prod" and not confirm:',
        ("tests/runtime/test_guards.py",)),
    Bug("string-true-flag", "src/alquimista_schema/aws/protocol.py",
        "    if not isinstance(value, bool):\n",
        "    if isinstance(value, str):\n        return value.lower() == \"true\"\n"
        "    if not isinstance(value, bool):\n",
        ("tests/aws/test_protocol.py", "tests/aws/test_fuzz.py")),
    Bug("password-in-missing-database", "src/alquimista_schema/connect/database.py",
        "f\"database {url.database!r} does not exist on {where}",
        "f\"database {url.render_as_string(hide_password=False)!r} does not exist on {where}",
        ("tests/connect/test_redaction.py",)),
    Bug("statement-timeout-cap-inverted", "src/alquimista_schema/runtime/pacing.py",
        "if limit == 0 or remaining < limit:",
        "if limit == 0 or remaining > limit:",
        ("tests/runtime/test_pacing.py",)),
    Bug("two-rows-fast-path", "src/alquimista_schema/runtime/probe.py",
        "if not in_recovery and versions == [head]:",
        "if not in_recovery and versions and head in versions:",
        ("tests/runtime/test_probe.py",)),
    Bug("other-schema-table-let-through", "src/alquimista_schema/autogenerate/compare.py",
        'return name in owned and getattr(obj, "schema", None) is None',
        "return name in owned",
        ("tests/autogenerate/test_compare.py",)),
    Bug("other-schema-reflected", "src/alquimista_schema/autogenerate/compare.py",
        "            return name is None\n",
        "            return True\n",
        ("tests/autogenerate/test_compare.py",)),
    Bug("lock-released-before-audit-row", "src/alquimista_schema/runtime/skeleton.py",
        "        with migration_lock(lock_conn, wait_seconds=run.bounded(run.lock_wait)), \\\n"
        "                audit.audited(lock_conn, run, target, started) as progress:\n",
        "        with audit.audited(lock_conn, run, target, started) as progress, \\\n"
        "                migration_lock(lock_conn, wait_seconds=run.bounded(run.lock_wait)):\n",
        ("tests/runtime/test_locking.py",)),
    Bug("adoption-ignores-index-where", "src/alquimista_schema/autogenerate/differences.py",
        "        elif got[name] != want[name]:\n",
        "        elif str(got[name]).split(' WHERE ')[0] != str(want[name]).split(' WHERE ')[0]:\n",
        ("tests/autogenerate/test_adoption.py",)),
)


def plant(bug: Bug, into: Path) -> None:
    """Copy the tree into ``into`` and apply ``bug``'s edit there."""
    shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns(
        ".venv", ".git", "mutants", ".devdb", "*_cache", "__pycache__", "cdk.out"))
    target = into / bug.path
    text = target.read_text()
    if text.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the text to replace is not in {bug.path} exactly once")
    target.write_text(text.replace(bug.old, bug.new))


def caught(bug: Bug) -> tuple[bool, list[str]]:
    """Run ``bug``'s tests against a planted copy; return (caught, failing test ids)."""
    with tempfile.TemporaryDirectory(prefix=f"planted-{bug.name}-") as tmp:
        copy = Path(tmp) / "tree"
        plant(bug, copy)
        env = {**os.environ, "PYTHONPATH": f"{copy / 'src'}{os.pathsep}{copy}"}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf",
             "--no-header", *bug.tests],
            cwd=copy, env=env, capture_output=True, text=True, check=False)
    failed = [line[len("FAILED "):].split(" - ")[0] for line in proc.stdout.splitlines()
              if line.startswith("FAILED ")]
    return proc.returncode != 0, failed


def main(names: list[str]) -> int:
    chosen = [b for b in BUGS if not names or b.name in names]
    survived = 0
    for bug in chosen:
        ok, failed = caught(bug)
        survived += not ok
        print(f"{bug.name}: {'caught' if ok else 'SURVIVED'} by {len(failed)} failing "
              f"test(s) of {', '.join(bug.tests)}")
        for test in failed[:8]:
            print(f"    {test}")
        if len(failed) > 8:
            print(f"    ... and {len(failed) - 8} more")
    print(f"{len(chosen) - survived} of {len(chosen)} planted bugs caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
