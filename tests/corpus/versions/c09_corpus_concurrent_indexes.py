"""corpus: CREATE INDEX CONCURRENTLY inside an autocommit block, and its downgrade.

``CREATE/DROP INDEX CONCURRENTLY`` cannot run inside a transaction block, and the
project runs each revision in its own transaction (``transaction_per_migration``).
``op.get_context().autocommit_block()`` commits that transaction, switches the
connection to AUTOCOMMIT for the block, and afterwards puts the isolation level back.

Pitfalls: everything before the block is committed when the block starts (keep such
revisions to the concurrent statements alone); a failed ``CONCURRENTLY`` build can
leave an INVALID index behind, so ``if_not_exists`` / ``if_exists`` make a re-run
possible; ``drop_index`` needs ``table_name`` here. The two indexes are a plain
one and an expression index (``lower(reference)``).

Revision ID: c09
Revises: c08
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c09"
down_revision: str | Sequence[str] | None = "c08"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "corpus_notes_title_idx",
            "corpus_notes",
            ["title"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "corpus_orders_reference_lower_idx",
            "corpus_orders",
            [sa.text("lower(reference)")],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "corpus_orders_reference_lower_idx",
            table_name="corpus_orders",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.drop_index(
            "corpus_notes_title_idx",
            table_name="corpus_notes",
            postgresql_concurrently=True,
            if_exists=True,
        )
