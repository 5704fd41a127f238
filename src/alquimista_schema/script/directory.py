"""Where the revision files live, and the Alembic configuration that finds them.

The script directory is package data (``alquimista_schema/migrations``), so an
installed copy or a Lambda bundle finds its revisions next to its own code, never
relative to the current directory or to the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alquimista_schema.errors import (
    NotAtHead,
    SeveralDatabaseRevisions,
    UnknownDatabaseRevision,
    UnknownRevision,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_LOCATION = SCRIPT_LOCATION / "versions"
FILE_TEMPLATE = "%%(rev)s_%%(slug)s"


def make_config(*, stdout: TextIO | None = None, **attributes: Any) -> Config:
    """Return an Alembic config for the package's own script directory.

    ``attributes`` land in ``config.attributes`` (``connection``, ``url``,
    ``target_metadata``...), the channel Alembic offers to hand objects to env.py.
    """
    from argparse import Namespace

    from alembic.config import Config  # deferred: the no-op fast path never needs Alembic

    # quiet: Alembic's own status lines ("Generating ... done"); the doors say what happened.
    config = Config(stdout=stdout, cmd_opts=Namespace(quiet=True, x=None)) if stdout is not None \
        else Config(cmd_opts=Namespace(quiet=True, x=None))
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", FILE_TEMPLATE)
    # env.py runs for `revision` too: it numbers new revisions (018, 019, ...).
    config.set_main_option("revision_environment", "true")
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
        detail = str(exc)  # Alembic's words, when they add something (an ambiguous prefix)
        extra = "" if "Can't locate revision" in detail else f" ({detail})"
        raise UnknownRevision(
            f"unknown revision {name!r}{extra}. Known revisions: {known} "
            "(or head, base, +N, -N)") from exc
    if not found:
        raise UnknownRevision(f"unknown revision {name!r}")


@dataclass(frozen=True)
class RevisionInfo:
    revision: str
    down_revision: str | None
    description: str
    is_head: bool


def info(script: ScriptDirectory, rev: Script) -> RevisionInfo:
    down = rev.down_revision if isinstance(rev.down_revision, str) else None
    return RevisionInfo(rev.revision, down, describe(rev), rev.revision in script.get_heads())


def history() -> list[RevisionInfo]:
    """List the revisions this release carries, oldest first."""
    script = script_directory()
    return [info(script, r) for r in chain(script)]


def heads() -> list[str]:
    """Return the head revisions of this release (one, unless branches were merged badly)."""
    return list(script_directory().get_heads())


def applied(script: ScriptDirectory, at: str | None) -> list[str]:
    """Return the revisions applied in a database at ``at``, oldest first."""
    if at is None:
        return []
    return [r.revision for r in reversed(list(script.iterate_revisions(at, "base")))]


# --- where a database is in the history -----------------------------------------------


def current_heads(script: ScriptDirectory, conn: Connection, *,
                  known: bool = True) -> tuple[str, ...]:
    """Return the database's revisions; unless ``known`` is False, raise if one is unknown
    to this release (``stamp --purge`` reads what it replaces, whatever it is)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    found = MigrationContext.configure(conn).get_current_heads()
    if conn.in_transaction():
        conn.commit()
    for head in found if known else ():
        try:
            script.get_revision(head)
        except (CommandError, RevisionError) as exc:
            raise UnknownDatabaseRevision(head, script.get_current_head()) from exc
    return found


def one(found: tuple[str, ...]) -> str | None:
    """The one revision the database is at (None: unversioned); several is an error,
    never the first of them (that would answer "at head" over a hand-edited table)."""
    if len(found) > 1:
        raise SeveralDatabaseRevisions(found)
    return found[0] if found else None


def require_head(script: ScriptDirectory, conn: Connection, needs: str) -> str | None:
    """Return the head the database is at; else raise NotAtHead saying where it is and what
    to run. ``needs``: what compares the models with the database (check, autogenerate)."""
    at = one(current_heads(script, conn))
    head = script.get_current_head()
    if at != head:
        raise NotAtHead(
            f"the database is at {at or 'base'}, not at head {head}: upgrade it first "
            f"(`alquimista-schema upgrade head`, or `alembic upgrade head`); {needs} compares "
            "the models with a database at head")
    return head


def described(found: tuple[str, ...]) -> str | None:
    """What the database was at, said whole: for ``stamp --purge``, which replaces it."""
    return ", ".join(found) if found else None
