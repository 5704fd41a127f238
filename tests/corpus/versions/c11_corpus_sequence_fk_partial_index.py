"""corpus: a sequence-backed column, a foreign key added later, and a partial index.

* ``corpus_invoice_no_seq`` (``sa.Sequence`` through ``CreateSequence``) feeds the
  default of ``corpus_orders.invoice_no``. The column is added WITHOUT a default and
  the default is set afterwards: adding it with a volatile default would fill the
  existing rows with ``nextval()`` in physical row order, which no migration should
  let decide stored data. Existing rows keep NULL; the sequence is never advanced.
* ``corpus_orders.project_id`` and ``op.create_foreign_key(None, ...)``: the
  convention names it ``corpus_orders_project_id_fkey``; the downgrade names it with
  ``op.f()``. A data fix by bind parameters sets it for customer 1's orders.
* ``corpus_orders_open_idx``: a partial index (``postgresql_where``).

Revision ID: c11
Revises: c10
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c11"
down_revision: str | Sequence[str] | None = "c10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INVOICE_SEQ = sa.Sequence("corpus_invoice_no_seq", start=1000, increment=1)


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(INVOICE_SEQ))
    op.add_column("corpus_orders", sa.Column("invoice_no", sa.BigInteger(), nullable=True))
    op.alter_column("corpus_orders", "invoice_no", existing_type=sa.BigInteger(),
                    server_default=sa.text("nextval('corpus_invoice_no_seq'::regclass)"))

    op.add_column("corpus_orders", sa.Column("project_id", sa.Integer(), nullable=True))
    op.create_foreign_key(None, "corpus_orders", "corpus_projects",
                          ["project_id"], ["id"], ondelete="SET NULL")
    op.execute(
        sa.text("UPDATE corpus_orders SET project_id = :project WHERE customer_id = :customer")
        .bindparams(project=1, customer=1)
    )

    op.create_index("corpus_orders_open_idx", "corpus_orders", ["customer_id"],
                    postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index("corpus_orders_open_idx", table_name="corpus_orders")
    op.drop_constraint(op.f("corpus_orders_project_id_fkey"), "corpus_orders",
                       type_="foreignkey")
    op.drop_column("corpus_orders", "project_id")  # the data fix goes with the column
    op.drop_column("corpus_orders", "invoice_no")  # first: its default uses the sequence
    op.execute(sa.schema.DropSequence(INVOICE_SEQ))
