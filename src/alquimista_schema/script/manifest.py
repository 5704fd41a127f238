"""The manifest: the head revision, known without loading Alembic or any revision.

The no-op probe reads it (runtime/probe.py). ``alembic revision`` keeps it current
(a post-write hook), ``bundle`` writes it at build time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from alquimista_schema.script import directory


def manifest_path() -> Path:
    return directory.SCRIPT_LOCATION / "manifest.json"


def revision_files() -> list[str]:
    return sorted(n for n in os.listdir(directory.VERSIONS_LOCATION) if n.endswith(".py"))


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
