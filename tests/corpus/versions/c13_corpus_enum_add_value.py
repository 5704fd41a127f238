"""corpus: add a value to the corpus_status enum (autocommit block), and take it away again.

``ALTER TYPE ... ADD VALUE`` may run inside a transaction since PostgreSQL 12, but the
new label cannot be used before that transaction commits ("unsafe use of new value
'on_hold' of enum type corpus_status"). So it runs in an autocommit block, and the
data change using the label follows the block. ``IF NOT EXISTS`` keeps a re-run safe.

Pitfall of the downgrade: PostgreSQL cannot drop an enum label. The downgrade moves
the rows off the label, renames the type away, creates it again without the label,
converts the column (``USING status::text::corpus_status``) and drops the old type.
The column's default must be dropped first and restored afterwards: PostgreSQL cannot
convert ``'draft'::corpus_status_old`` by itself ("default for column status cannot
be cast automatically").

Revision ID: c13
Revises: c12
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c13"
down_revision: str | Sequence[str] | None = "c12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE corpus_status ADD VALUE IF NOT EXISTS 'on_hold' BEFORE 'archived'")
    op.execute(
        sa.text("UPDATE corpus_projects SET status = :status WHERE id = :id")
        .bindparams(status="on_hold", id=2)
    )


def downgrade() -> None:
    op.execute(
        sa.text("UPDATE corpus_projects SET status = :status WHERE id = :id")
        .bindparams(status="archived", id=2)
    )
    op.execute("ALTER TABLE corpus_projects ALTER COLUMN status DROP DEFAULT")
    op.execute("ALTER TYPE corpus_status RENAME TO corpus_status_old")
    op.execute("CREATE TYPE corpus_status AS ENUM ('draft', 'active', 'archived')")
    op.execute("ALTER TABLE corpus_projects ALTER COLUMN status TYPE corpus_status "
               "USING status::text::corpus_status")
    op.execute("ALTER TABLE corpus_projects ALTER COLUMN status SET DEFAULT 'draft'")
    op.execute("DROP TYPE corpus_status_old")
