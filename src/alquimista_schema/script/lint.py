"""Lint every revision's SQL with squawk before it can be applied.

squawk reads the offline SQL of each revision alone. A finding is fixed, or waived
in the revision file with a reason::

    SQUAWK_WAIVERS = {"prefer-text-field": "legacy column types are kept exactly"}

The results are written to ``migrations/lint.json`` (package data, so the Lambda
bundle carries them without carrying squawk); a test keeps that file equal to a
fresh run. With the ``enforce`` policy (the default when ``ENVIRONMENT=prod``) the
runner refuses a revision with unwaived findings, or one the file does not cover
(runtime/guards.py).

Beside squawk's rules, one of ours that no waiver lifts: a revision imports only what
cannot change under it (Alembic, SQLAlchemy, the standard library). Its checksum covers
its own file; SQL taken from a project module would change what an applied revision
runs while ``verify`` saw nothing.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alquimista_schema.errors import ConfigurationError, SchemaError
from alquimista_schema.script import authoring, directory

__all__ = ["Finding", "lint", "load_manifest", "unwaived"]

PG_VERSION = "15.0"  # Aurora PostgreSQL 15
POLICIES = ("enforce", "warn", "off")
# Waived for every revision, declared once with the reason; a revision's own
# SQUAWK_WAIVERS wins. The house style (models.py) keeps PostgreSQL's varchar(n).
HOUSE_WAIVERS = {
    "prefer-text-field": (
        "house style: the models keep varchar(n) as the live schema has it (models.py); "
        "adding such a column rewrites nothing, and changing a length later is a revision of "
        "its own, which squawk's changing-column-type rule reviews"),
}


def manifest_path() -> Path:
    return directory.SCRIPT_LOCATION / "lint.json"


@dataclass(frozen=True)
class Finding:
    revision: str
    rule: str
    line: int
    message: str
    waived: bool
    reason: str | None


def squawk_binary() -> str:
    """Find squawk on PATH, or next to this interpreter (a venv that is not activated)."""
    found = shutil.which("squawk")
    beside = Path(sys.executable).parent / "squawk"
    if found is None and beside.is_file():
        found = str(beside)
    if found is None:
        raise ConfigurationError("squawk is not installed: pip install squawk-cli")
    return found


def lint(*, squawk: str | None = None,
         only: Collection[str] | None = None) -> dict[str, list[Finding]]:
    """Run squawk over each revision's upgrade SQL (or only those named); return findings
    by revision."""
    binary = squawk or squawk_binary()
    results: dict[str, list[Finding]] = {}
    with tempfile.TemporaryDirectory(prefix="alq-lint-") as tmp:
        for rev in directory.chain(directory.script_directory()):
            if only is not None and rev.revision not in only:
                continue
            down = rev.down_revision if isinstance(rev.down_revision, str) else None
            sql = authoring.sql(f"{down}:{rev.revision}" if down else rev.revision)
            path = Path(tmp) / f"{rev.revision}.sql"
            path.write_text(sql)
            done = subprocess.run([binary, "--reporter", "json", "--pg-version", PG_VERSION,
                                   str(path)], capture_output=True, text=True, check=False)
            try:
                raw: list[dict[str, Any]] = json.loads(done.stdout or "[]")
            except json.JSONDecodeError as exc:
                raise SchemaError(f"squawk failed on {rev.revision}: {done.stderr.strip()}") \
                    from exc
            waivers: dict[str, str] = {**HOUSE_WAIVERS,
                                       **getattr(rev.module, "SQUAWK_WAIVERS", {})}
            results[rev.revision] = [
                Finding(rev.revision, f["rule_name"], int(f["line"]), f["message"],
                        f["rule_name"] in waivers, waivers.get(f["rule_name"]))
                for f in raw
            ] + import_findings(rev.revision, Path(rev.path).read_text(encoding="utf-8"))
    return results


IMPORT_RULE = "revision-imports-changing-code"
STABLE_IMPORTS = frozenset({"alembic", "sqlalchemy", "__future__"}) | sys.stdlib_module_names


def import_findings(revision: str, source: str) -> list[Finding]:
    """Each import of the revision (at any depth, ``importlib`` included) of a module
    that can change under an applied revision: the project's own, or any other."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [("." * node.level) + (node.module or "")]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__"):
            names = ["(a dynamic import)"]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in STABLE_IMPORTS:
                found.append(Finding(
                    revision, IMPORT_RULE, node.lineno,
                    f"imports {name}: a revision may import only Alembic, SQLAlchemy and "
                    "the standard library (its checksum covers its own file only); copy "
                    "the SQL into the revision", False, None))
    return found


def unwaived(results: dict[str, list[Finding]]) -> list[Finding]:
    return [f for findings in results.values() for f in findings if not f.waived]


def to_manifest(results: dict[str, list[Finding]]) -> str:
    data = {rev: [{k: v for k, v in asdict(f).items() if k != "revision"} for f in findings]
            for rev, findings in results.items()}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_manifest() -> dict[str, list[Finding]]:
    """Return the committed lint results (empty when the file is missing)."""
    try:
        data = json.loads(manifest_path().read_text())
    except FileNotFoundError:
        return {}
    return {rev: [Finding(rev, **f) for f in findings] for rev, findings in data.items()}


def record_missing() -> tuple[Path, list[Finding]]:
    """Lint the revisions lint.json does not cover yet (a new one) and write the file.

    ``revision`` calls it, so the file the enforce policy reads is never stale after a
    revision is generated; results of revisions no longer in the history are dropped.
    Returns the file and the new findings."""
    known = load_manifest()
    chain = [rev.revision for rev in directory.chain(directory.script_directory())]
    fresh = lint(only=set(chain) - set(known))
    kept = {rev: known.get(rev, []) for rev in chain if rev in known}
    manifest_path().write_text(to_manifest({**kept, **fresh}))
    return manifest_path(), [f for findings in fresh.values() for f in findings]
