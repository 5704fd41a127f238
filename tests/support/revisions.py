"""The package's revisions, as the tests read them: derived from the script directory.

Tests never pin the head or the revision list. A revision a developer generates (the next
number: after 021 comes 022) moves ``HEAD`` and lengthens ``REVISIONS``, and every test that
means "the head", "the revision before it", "all of them" or "how many" follows. A test
about one shipped revision (017's legacy schema, 020's repaired function) names it.

The tests' own scratch revisions (written into a copy of the script directory) take ids
that no generated revision can take (``SCRATCH``: not numbers), chained after ``HEAD``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from alquimista_schema.script import directory


def _chain() -> list[str]:
    # The package's own folder, never a test's scratch copy (fixtures patch the module's
    # VERSIONS_LOCATION, and this module may be imported first inside such a test).
    from alembic.script import ScriptDirectory

    config = directory.make_config()
    config.set_main_option("script_location", str(_PACKAGE_SCRIPTS))
    return [r.revision for r in directory.chain(ScriptDirectory.from_config(config))]


_PACKAGE_SCRIPTS = Path(directory.__file__).resolve().parent.parent / "migrations"


REVISIONS: list[str] = _chain()
"""Every shipped revision, base to head (``lead_ingestion``, ``017``, ...)."""
HEAD: str = REVISIONS[-1]
COUNT: int = len(REVISIONS)

NEXT: str = f"{max((int(r) for r in REVISIONS if r.isdigit()), default=0) + 1:03d}"
"""The id the next generated revision gets (``revision`` numbers it after the highest)."""

SCRATCH: tuple[str, ...] = ("t_scratch_a", "t_scratch_b", "t_scratch_c")
"""Ids for the tests' scratch revisions, in chain order after ``HEAD``: never a number."""
EXTRA = SCRATCH[0]


def after(rev: str | None, upto: str = HEAD) -> list[str]:
    """The revisions after ``rev`` (None: base), up to and including ``upto``."""
    start = 0 if rev is None else REVISIONS.index(rev) + 1
    return REVISIONS[start:REVISIONS.index(upto) + 1]


def upto(rev: str) -> list[str]:
    """The revisions from the first up to and including ``rev``."""
    return REVISIONS[:REVISIONS.index(rev) + 1]


def previous(rev: str = HEAD) -> str | None:
    """The revision before ``rev`` (None: ``rev`` is the first)."""
    at = REVISIONS.index(rev)
    return REVISIONS[at - 1] if at else None


PREVIOUS: str = previous() or "base"
"""The revision before the head."""

# A scratch revision after the package's head: one column added to dry_run_log.
EXTRA_COLUMN = f'''"""An extra column."""
from alembic import op

revision = "{EXTRA}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dry_run_log ADD COLUMN extra text")


def downgrade() -> None:
    op.execute("ALTER TABLE dry_run_log DROP COLUMN extra")
'''


def scratch_revision(revision: str, down: str | None, upgrade: str | list[str],
                     downgrade: str | list[str] | tuple[()] = (),
                     doc: str = "A scratch revision.", *, module: str = "",
                     imports: tuple[str, ...] = ()) -> str:
    """The text of a scratch revision file, as `alembic revision` lays one out.

    ``upgrade`` and ``downgrade``: SQL statements, each run by ``op.execute``, or a
    function body as Python source (a ``str`` holding ``op.`` or ``time.``); none: ``pass``.
    ``module``: lines at module level (a ``BUSY_TABLE_WAIVER``, ``SQUAWK_WAIVERS``).
    ``imports``: modules the bodies use besides ``op`` (``time``, ``sqlalchemy as sa``).
    """
    def body(given: str | list[str] | tuple[str, ...]) -> str:
        if isinstance(given, str) and ("op." in given or "time." in given):
            lines = textwrap.dedent(given).strip("\n").splitlines()
        else:
            lines = [f"op.execute({sql!r})" for sql in ([given] if isinstance(given, str)
                                                        else given)] or ["pass"]
        return "\n".join(f"    {line}" if line else "" for line in lines)

    head = "".join(f"import {name}\n" for name in imports)
    head = f'"""{doc}"""\n{head}{chr(10) if imports else ""}from alembic import op\n\n'
    head += f"revision = {revision!r}\ndown_revision = {down!r}\n"
    head += "branch_labels = None\ndepends_on = None\n"
    head += f"{module}\n" if module else ""
    return (f"{head}\n\ndef upgrade() -> None:\n{body(upgrade)}\n\n\n"
            f"def downgrade() -> None:\n{body(downgrade)}\n")
