"""Where the revision files live, and the Alembic configuration that finds them.

The script directory is package data (``alquimista_schema/migrations``), so an
installed copy or a Lambda bundle finds its revisions next to its own code, never
relative to the current directory or to the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alquimista_schema.errors import UnknownRevision

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_LOCATION = SCRIPT_LOCATION / "versions"
FILE_TEMPLATE = "%%(rev)s_%%(slug)s"


def make_config(*, stdout: TextIO | None = None, **attributes: Any) -> Config:
    """Return an Alembic config for the package's own script directory.

    ``attributes`` land in ``config.attributes`` (``connection``, ``url``,
    ``target_metadata``...), the channel Alembic offers to hand objects to env.py.
    """
    from alembic.config import Config  # deferred: the no-op fast path never needs Alembic

    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.attributes["embedded"] = True
    config.attributes.update(attributes)
    return config


_LOADED: dict[tuple[str, tuple[tuple[str, int], ...]], ScriptDirectory] = {}


def script_directory() -> ScriptDirectory:
    """Load the package's revisions once per process (a warm Lambda keeps them).

    Imports Alembic, so never on the no-op fast path. Keyed by the versions folder's
    file names and modification times: a revision written since is seen at once.
    """
    from alembic.script import ScriptDirectory

    with os.scandir(VERSIONS_LOCATION) as entries:
        listing = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in entries
                               if e.name.endswith(".py")))
    key = (str(VERSIONS_LOCATION), listing)
    found = _LOADED.get(key)
    if found is None:
        _LOADED.clear()
        found = _LOADED[key] = ScriptDirectory.from_config(make_config())
    return found


def chain(script: ScriptDirectory) -> list[Script]:
    """Return the revisions, oldest first."""
    return list(reversed(list(script.walk_revisions())))


def describe(script: Script) -> str:
    """Return the first line of a revision's docstring."""
    doc = (script.doc or "").strip()
    return doc.splitlines()[0] if doc else ""


def resolve(script: ScriptDirectory, name: str | None) -> None:
    """Raise UnknownRevision unless ``name`` (head, base, an id) is in the history."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    if name is None or name in ("head", "heads", "base"):
        return
    try:
        found = script.get_revisions(name)
    except (CommandError, RevisionError) as exc:
        known = ", ".join(r.revision for r in chain(script))
        raise UnknownRevision(
            f"unknown revision {name!r}: {exc}. Known revisions: {known} "
            "(or head, base, +N, -N)") from exc
    if not found:
        raise UnknownRevision(f"unknown revision {name!r}")


# --- the manifest: the head without loading every revision module ------------------


def manifest_path() -> Path:
    return SCRIPT_LOCATION / "manifest.json"


def revision_files() -> list[str]:
    return sorted(n for n in os.listdir(SCRIPT_LOCATION / "versions") if n.endswith(".py"))


def manifest(head: str, *, built: bool = False) -> str:
    """Render the manifest for the current script directory (``head`` from Alembic)."""
    files = revision_files()
    # A built manifest is trusted as is: no file list to read (the no-op stays O(1)).
    data: dict[str, Any] = ({"head": head, "revisions": len(files), "built": True} if built
                            else {"head": head, "files": files, "built": False})
    return json.dumps(data, indent=2) + "\n"


def known_head() -> str | None:
    """Return the head recorded in the manifest, or None when it cannot be trusted.

    A bundle's manifest is written when the bundle is built, so it is trusted as is. In
    a checkout, the revision files are listed and compared, so a revision added by
    hand never hides behind a stale manifest.
    """
    try:
        data = json.loads(manifest_path().read_text())
    except (OSError, ValueError):
        return None
    head = data.get("head")
    if not isinstance(head, str):
        return None
    if not data.get("built") and data.get("files") != revision_files():
        return None
    return head
