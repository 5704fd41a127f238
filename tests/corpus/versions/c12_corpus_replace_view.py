"""corpus: CREATE OR REPLACE VIEW corpus_customer_orders, adding paid orders and totals.

``CREATE OR REPLACE VIEW`` may only append columns: every existing column keeps its
name, type and position (``name`` stays ``name``, now read from ``full_name``, the
column c10 renamed). The view's comment survives a replace.

Pitfalls of the downgrade: ``CREATE OR REPLACE`` cannot take the appended columns
away ("cannot drop columns from view"), so the downgrade drops the view and creates
it again, and must then restore its comment, which the drop took with it. The
previous definition is the one in force just before this revision, written against
``full_name``: re-running c08's original SQL would fail, since ``c.name`` no longer
exists at this point.

Revision ID: c12
Revises: c11
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c12"
down_revision: str | Sequence[str] | None = "c11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_TOTALS = """
CREATE OR REPLACE VIEW corpus_customer_orders AS
SELECT
    c.id AS customer_id,
    c.code,
    c.full_name AS name,
    count(o.id) AS order_count,
    count(o.id) FILTER (WHERE o.status = 'open') AS open_orders,
    count(o.id) FILTER (WHERE o.status = 'paid') AS paid_orders,
    coalesce(sum(o.amount - o.discount), 0)::numeric(14, 2) AS total_amount
FROM corpus_customers c
LEFT JOIN corpus_orders o ON o.customer_id = c.id
GROUP BY c.id, c.code, c.full_name
"""

# As c08 created it, after c10's rename of corpus_customers.name to full_name.
PREVIOUS = """
CREATE VIEW corpus_customer_orders AS
SELECT
    c.id AS customer_id,
    c.code,
    c.full_name AS name,
    count(o.id) AS order_count,
    count(o.id) FILTER (WHERE o.status = 'open') AS open_orders
FROM corpus_customers c
LEFT JOIN corpus_orders o ON o.customer_id = c.id
GROUP BY c.id, c.code, c.full_name
"""

PREVIOUS_COMMENT = (
    "COMMENT ON VIEW corpus_customer_orders IS 'Pedidos por cliente (todos os estados)'"
)


def upgrade() -> None:
    op.execute(WITH_TOTALS)


def downgrade() -> None:
    op.execute("DROP VIEW corpus_customer_orders")
    op.execute(PREVIOUS)
    op.execute(PREVIOUS_COMMENT)
