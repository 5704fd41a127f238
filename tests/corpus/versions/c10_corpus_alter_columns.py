"""corpus: add_column, a type change with postgresql_using, a check, and renames.

* ``corpus_orders.discount``: ``op.add_column`` with a server default.
* ``corpus_orders.amount``: text to ``numeric(12, 2)`` with ``postgresql_using``.
  Pitfall: Alembic emits the ``ALTER ... TYPE`` before the default change of the same
  ``alter_column`` call, and PostgreSQL cannot cast the old default
  (``'0.00'::character varying``) to numeric by itself ("default for column amount
  cannot be cast automatically"): drop the default, change the type, set the new
  default, in three calls. The downgrade reverses all three; the stored amounts all
  have two decimals, so ``amount::varchar`` gives back the very same text.
* ``op.create_check_constraint("amount_nonneg", ...)``: under the naming convention
  the constraint is named ``ck_corpus_orders_amount_nonneg``; the downgrade names it
  with ``op.f()`` (taken as final, never run through the convention).
* ``op.alter_column(new_column_name=...)``: ``corpus_customers.name`` becomes
  ``full_name``; the view ``corpus_customer_orders`` (c08) follows the rename by itself
  and keeps its output column ``name``.
* ``op.rename_table``: ``corpus_audit`` (c06) becomes ``corpus_audit_log``. A rename
  keeps the old constraint and index names, so the primary key is renamed too.

Revision ID: c10
Revises: c09
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c10"
down_revision: str | Sequence[str] | None = "c09"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "corpus_orders",
        sa.Column("discount", sa.Numeric(5, 2), nullable=False, server_default="0"),
    )

    op.alter_column("corpus_orders", "amount", existing_type=sa.String(length=20),
                    server_default=None, existing_server_default="0.00")
    op.alter_column("corpus_orders", "amount", existing_type=sa.String(length=20),
                    type_=sa.Numeric(12, 2), existing_nullable=False,
                    postgresql_using="amount::numeric(12,2)")
    op.alter_column("corpus_orders", "amount", existing_type=sa.Numeric(12, 2),
                    server_default="0")
    op.create_check_constraint("amount_nonneg", "corpus_orders", "amount >= 0")

    op.alter_column("corpus_customers", "name", new_column_name="full_name",
                    existing_type=sa.String(length=200), existing_nullable=False)

    op.rename_table("corpus_audit", "corpus_audit_log")
    op.execute("ALTER TABLE corpus_audit_log RENAME CONSTRAINT corpus_audit_pkey "
               "TO corpus_audit_log_pkey")


def downgrade() -> None:
    op.execute("ALTER TABLE corpus_audit_log RENAME CONSTRAINT corpus_audit_log_pkey "
               "TO corpus_audit_pkey")
    op.rename_table("corpus_audit_log", "corpus_audit")

    op.alter_column("corpus_customers", "full_name", new_column_name="name",
                    existing_type=sa.String(length=200), existing_nullable=False)

    op.drop_constraint(op.f("ck_corpus_orders_amount_nonneg"), "corpus_orders", type_="check")
    op.alter_column("corpus_orders", "amount", existing_type=sa.Numeric(12, 2),
                    server_default=None, existing_server_default="0")
    op.alter_column("corpus_orders", "amount", existing_type=sa.Numeric(12, 2),
                    type_=sa.String(length=20), existing_nullable=False,
                    postgresql_using="amount::varchar(20)")
    op.alter_column("corpus_orders", "amount", existing_type=sa.String(length=20),
                    server_default="0.00")

    op.drop_column("corpus_orders", "discount")
