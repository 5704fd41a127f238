"""Compiled revisions: each revision's upgrade SQL, rendered once by Alembic offline.

A full upgrade through Alembic pays, before any statement runs, for importing
SQLAlchemy and Alembic, loading every revision module and Alembic's bookkeeping of
each step: about 2 s at a thousand revisions against 0.5 s for ``psql -f`` of the
same SQL. So an upgrade whose pending revisions are all plain SQL runs them from
``migrations/compiled.json`` instead (express.py), through psycopg2 alone.

The file is a cache, like ``__pycache__``: written after an upgrade that went through
Alembic (and by ``bundle``, for the read-only Lambda), and trusted only while its
fingerprint matches the revision files byte for byte. Every statement in it is
Alembic's own offline rendering (the one ``alquimista-schema sql`` prints), captured
per revision, with the version-table statement Alembic would run for that step.

A revision compiles only when its own file alone determines its SQL. It is left to
Alembic (``statements`` is null, with the reason) when it imports anything besides
alembic, sqlalchemy and typing (its SQL could depend on another file, or its Python
do work of its own), reads files or evaluates code, talks to the database while it
runs (``op.get_bind()``, ``context.is_offline_mode()``...), leaves the transaction
(``autocommit_block``), cannot render offline, or says ``ONLINE_ONLY = "why"``. Only a
linear history (one head, no merges, no ``depends_on``) is compiled. Loading needs
neither SQLAlchemy nor Alembic.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alquimista_schema import __version__, scripts

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory

log = logging.getLogger(__name__)

FORMAT = 3
# Names that mean a revision talks to the database while it runs, behaves differently
# offline, or reads more than its own file: its offline SQL is not what it does online.
ONLINE_NAMES = frozenset({
    "get_bind", "is_offline_mode", "get_context", "migration_context", "autocommit_block",
    "run_async", "open", "exec", "eval", "compile", "__import__", "input", "ONLINE_ONLY"})
PURE_IMPORTS = ("__future__", "typing", "collections.abc", "alembic", "sqlalchemy")
# alembic.context is the environment: -x arguments, the config, offline or not.
ONLINE_MODULES = ("alembic.context", "alembic.runtime")


@dataclass(frozen=True)
class Revision:
    """One revision, compiled."""

    revision: str
    down_revision: str | None
    description: str
    statements: list[str] | None
    """Its upgrade statements as Alembic renders them offline; None: Alembic runs it."""
    version_sql: str
    """Alembic's INSERT (first revision) or UPDATE of alembic_version for this step."""
    why: str | None = None
    """Why ``sql`` is None."""


@dataclass(frozen=True)
class Chain:
    """The compiled history, oldest first."""

    head: str
    version_table_sql: str
    """Alembic's CREATE TABLE alembic_version, run in the first revision's transaction."""
    revisions: list[Revision]

    def pending(self, start: str | None, dest: str) -> list[Revision] | None:
        """The revisions an upgrade from ``start`` to ``dest`` applies, or None when that
        is no plain upgrade of this history (unknown revisions, or going down)."""
        ids = [r.revision for r in self.revisions]
        if dest not in ids or (start is not None and start not in ids):
            return None
        first = 0 if start is None else ids.index(start) + 1
        last = ids.index(dest) + 1
        return self.revisions[first:last] if first <= last else None


def path() -> Path:
    return scripts.SCRIPT_LOCATION / "compiled.json"


def _files() -> list[Path]:
    return sorted(p for p in scripts.VERSIONS_LOCATION.iterdir() if p.suffix == ".py")


def fingerprint() -> str:
    """A digest of every revision file's name and bytes (and of this format)."""
    digest = hashlib.sha256(f"alquimista-schema {__version__} compiled {FORMAT}\n".encode())
    for file in _files():
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


_loaded: dict[tuple[Any, ...], Chain | None] = {}


def load() -> Chain | None:
    """Return the compiled history if it matches the revision files, else None.

    Kept per process (a warm Lambda reads nothing again) until a revision file's name,
    size or modification time changes.
    """
    try:
        key = (str(path()), path().stat().st_mtime_ns,
               tuple((f.name, *_size_and_mtime(f)) for f in _files()))
    except OSError:
        return None
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = _read()
    return _loaded[key]


def _size_and_mtime(file: Path) -> tuple[int, int]:
    status = file.stat()  # one stat per file: a thousand revisions, a thousand calls
    return status.st_size, status.st_mtime_ns


def _read() -> Chain | None:
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("fingerprint") != fingerprint():
        return None
    try:
        return Chain(data["head"], data["version_table_sql"],
                     [Revision(**r) for r in data["revisions"]])
    except (KeyError, TypeError):  # written by hand, or by another release
        return None


# --- building: Alembic's offline rendering, revision by revision ----------------------


class _Capture:
    """An output buffer that keeps each statement Alembic writes (one write apiece)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.statements.append(text.strip())

    def flush(self) -> None:
        """Alembic flushes after every statement; nothing is buffered here."""

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken


def _linear(script: ScriptDirectory, chain: list[Script]) -> bool:
    return len(script.get_heads()) == 1 and all(
        not r.dependencies and (r.down_revision is None or isinstance(r.down_revision, str))
        for r in chain)


def render(script: ScriptDirectory) -> dict[str, Any] | None:
    """Render the compiled history of ``script`` (None: not a linear history)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    chain = scripts.chain(script)
    if not chain or not _linear(script, chain):
        return None
    out = _Capture()
    # As env.py's offline mode: the named paramstyle keeps a literal % as one % (the
    # default pyformat doubles it, for a driver that never sees this text).
    context = MigrationContext.configure(
        dialect_name="postgresql", dialect_opts={"paramstyle": "named"},
        opts={"as_sql": True, "output_buffer": out, "literal_binds": True})
    assert context.connection is not None  # offline: the mock that writes to ``out``
    context._version.create(context.connection)  # as Alembic's offline run does from base
    version_table_sql = "\n".join(out.take())
    with Operations.context(context):
        revisions = [_compile(context, script, rev, out) for rev in chain]
    return {"format": FORMAT, "fingerprint": fingerprint(), "head": chain[-1].revision,
            "version_table_sql": version_table_sql, "revisions": revisions}


def _compile(context: MigrationContext, script: ScriptDirectory, rev: Script,
             out: _Capture) -> dict[str, Any]:
    from alembic.runtime.migration import HeadMaintainer, RevisionStep

    why = _online_only(rev)
    out.take()
    if why is None:  # never run one left to Alembic: its Python may do work of its own
        try:
            rev.module.upgrade()
        except Exception as exc:  # a revision's own code may raise anything offline
            why = f"its upgrade() does not render offline ({type(exc).__name__})"
    statements = out.take()
    if any(s.rstrip(";").strip().upper() in ("BEGIN", "COMMIT") for s in statements):
        why = why or "it leaves the revision's transaction (autocommit_block)"
    down = rev.down_revision if isinstance(rev.down_revision, str) else None
    HeadMaintainer(context, () if down is None else (down,)).update_to_step(
        RevisionStep(script.revision_map, rev, True))
    return {"revision": rev.revision, "down_revision": down,
            "description": scripts.describe(rev),
            "statements": None if why else statements,
            "version_sql": "\n".join(out.take()), "why": why}


def _online_only(rev: Script) -> str | None:
    """Why ``rev`` must run through Alembic, or None when its file alone makes its SQL."""
    reason = getattr(rev.module, "ONLINE_ONLY", None)
    if reason:
        return f"it says ONLINE_ONLY: {reason}"
    tree = ast.parse(Path(rev.path).read_text())
    imported = [name for node in ast.walk(tree) for name in _imports(node)]
    impure = sorted({n for n in imported
                     if not any(n == p or n.startswith(p + ".") for p in PURE_IMPORTS)
                     or n.startswith(ONLINE_MODULES) or set(n.split(".")) & ONLINE_NAMES})
    if impure:
        return f"it imports {', '.join(impure)}: its SQL may depend on more than its file"
    used = sorted({node.id if isinstance(node, ast.Name) else node.attr
                   for node in ast.walk(tree) if isinstance(node, ast.Name | ast.Attribute)}
                  & ONLINE_NAMES)
    return f"it uses {', '.join(used)}: its offline SQL may differ" if used else None


def _imports(node: ast.AST) -> list[str]:
    """The dotted names a node imports (``from a import b`` is ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return ["."]
        return [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def refresh(script: ScriptDirectory) -> Path | None:
    """Write ``compiled.json`` for ``script`` unless it is current; None when not written.

    A cache: a folder that cannot be written (an installed package, the Lambda) only
    means the next upgrade goes through Alembic again.
    """
    if load() is not None or not os.access(path().parent, os.W_OK):
        return None  # current, or nowhere to write it: not worth rendering
    data = render(script)
    if data is None:
        return None
    target = path()
    try:
        fd, temp = tempfile.mkstemp(prefix=".compiled-", dir=target.parent)
    except OSError as exc:
        log.debug("compiled revisions not written to %s: %s", target, exc)
        return None
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from other users of the package
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(temp, target)  # atomic: a concurrent reader sees the old file or this one
    except OSError as exc:
        log.debug("compiled revisions not written to %s: %s", target, exc)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return None
    return target


def refresh_quietly(script: ScriptDirectory) -> None:
    """:func:`refresh` after a run that has committed: whatever goes wrong is only logged,
    never turned into the run's failure (the cache is an optimisation)."""
    try:
        refresh(script)
    except Exception:  # a revision's module may raise anything
        log.debug("compiled revisions not refreshed", exc_info=True)
