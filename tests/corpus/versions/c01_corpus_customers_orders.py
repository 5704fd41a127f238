"""corpus: customers and orders, with named and unnamed constraints and server defaults.

``op.create_table`` with a primary key, a unique, check constraints and a foreign key
``ON DELETE CASCADE``, each once named and once left to the naming convention of the
target metadata (applied by Alembic online and offline): the unnamed primary key
becomes ``corpus_customers_pkey``, the unnamed unique ``corpus_customers_code_key``, the
unnamed foreign key ``corpus_orders_customer_id_fkey``, and the check named
``credit_limit_nonneg`` becomes ``ck_corpus_customers_credit_limit_nonneg`` (the
convention's ``ck`` template holds ``%(constraint_name)s``).

Pitfall: because that ``ck`` template needs ``%(constraint_name)s``, an unnamed
``sa.CheckConstraint("...")`` inside ``op.create_table`` raises ``InvalidRequestError:
Naming convention including %(constraint_name)s token requires that constraint is
explicitly named``. The unnamed check is therefore added with plain SQL, and
PostgreSQL names it ``corpus_customers_score_check`` by itself.

Server defaults: a plain Python string is quoted by SQLAlchemy (the regex ``^\\d+$``,
written as a raw string), ``sa.text`` is emitted verbatim, a numeric default is given
as a string (``'0'``) and as ``sa.text("10")``. ``now()`` is a schema default only:
no row of the corpus stores it in a compared column.

Revision ID: c01
Revises: the package's head (chained at copy time: corpus_scripts, tests/support/doors.py)
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c01"
down_revision: str | Sequence[str] | None = "package_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corpus_customers",
        sa.Column("id", sa.Integer(), primary_key=True),  # unnamed PK: SERIAL
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code_pattern", sa.Text(), nullable=False, server_default=r"^\d+$"),
        sa.Column("ref_pattern", sa.Text(), server_default=sa.text(r"'^[A-Z]{2}-\d{4}$'")),
        sa.Column("credit_limit", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("score", sa.Integer(), nullable=False, server_default=sa.text("10")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint("code"),  # unnamed: corpus_customers_code_key
        sa.CheckConstraint("credit_limit >= 0", name="credit_limit_nonneg"),
    )
    # An unnamed CHECK cannot go through create_table under this naming convention
    # (see the docstring): let PostgreSQL name it (corpus_customers_score_check).
    op.execute("ALTER TABLE corpus_customers ADD CHECK (score BETWEEN 0 AND 100)")

    op.create_table(
        "corpus_orders",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("corpus_customers.id", ondelete="CASCADE"),  # unnamed FK
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=40), nullable=False),
        # Legacy: money as text. Revision c10 turns it into numeric(12, 2).
        sa.Column("amount", sa.String(length=20), nullable=False, server_default="0.00"),
        sa.Column("status", sa.String(length=20), nullable=False, server_default="open"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="corpus_orders_pk"),
        sa.UniqueConstraint("customer_id", "reference", name="corpus_orders_customer_reference_uq"),
        sa.CheckConstraint("status IN ('open', 'paid', 'cancelled')", name="status"),
    )


def downgrade() -> None:
    op.drop_table("corpus_orders")
    op.drop_table("corpus_customers")  # its SERIAL sequence goes with it
