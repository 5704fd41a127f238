"""A revision's checksum: what Python runs, not how it is typed."""

from __future__ import annotations

import pytest

from alquimista_schema.script import checksums
from alquimista_schema.script.checksums import checksum
from tests.support.revisions import EXTRA, HEAD

REVISION = f'''"""Add a column.

Revision ID: {EXTRA}
"""
from alembic import op

revision = "{EXTRA}"
down_revision = "{HEAD}"


def upgrade() -> None:
    """Add it."""
    op.execute("ALTER TABLE dry_run_log ADD COLUMN extra text")  # the change


def downgrade() -> None:
    op.execute("ALTER TABLE dry_run_log DROP COLUMN extra")
'''

SAME = {
    "docstrings reworded": REVISION.replace("Add a column.", "Add the extra column, for X.")
                                  .replace('"""Add it."""', '"""Adds it, as asked."""'),
    "a docstring removed": REVISION.replace('    """Add it."""\n', ""),
    "comments": REVISION.replace("  # the change", "  # why: the dashboard wants it"),
    "layout": REVISION.replace('op.execute("ALTER', 'op.execute(\n        "ALTER')
                      .replace("\n\n\ndef downgrade", "\n\ndef downgrade"),
    "quotes": REVISION.replace(f'revision = "{EXTRA}"', f"revision = '{EXTRA}'"),
}
DIFFERENT = {
    "a statement": REVISION.replace("ADD COLUMN extra text", "ADD COLUMN extra varchar"),
    "an operation": REVISION.replace('op.execute("ALTER TABLE dry_run_log DROP COLUMN extra")',
                                     'op.drop_column("dry_run_log", "extra")'),
    "a statement added": REVISION.replace("  # the change", "\n    op.execute('SELECT 1')"),
    "the down revision": REVISION.replace(f'down_revision = "{HEAD}"', 'down_revision = "017"'),
}


@pytest.mark.parametrize("edited", SAME.values(), ids=list(SAME))
def test_wording_comments_and_layout_never_count(edited: str) -> None:
    assert edited != REVISION
    assert checksum(edited) == checksum(REVISION)


@pytest.mark.parametrize("edited", DIFFERENT.values(), ids=list(DIFFERENT))
def test_a_change_of_code_always_counts(edited: str) -> None:
    assert edited != REVISION
    assert checksum(edited) != checksum(REVISION)


def test_the_checksum_names_its_rule_and_skips_empty_fields() -> None:
    assert checksum(REVISION).startswith("ast1:")
    assert len(checksum(REVISION)) == len("ast1:") + 64
    # fields a newer Python adds empty (type_params) must not change the form
    assert "type_params" not in checksums.canonical(
        __import__("ast").parse("def f():\n    return 1\n"))
