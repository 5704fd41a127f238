"""corpus: two views, created with plain SQL, one with a comment.

``corpus_customer_orders`` counts each customer's orders; ``corpus_note_labels`` calls
the function ``corpus_note_label`` of c05, so that function cannot be dropped while
the view exists (c05's downgrade runs after this one's, in the right order). Revision
c12 replaces ``corpus_customer_orders`` with ``CREATE OR REPLACE VIEW``.

Revision ID: c08
Revises: c07
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c08"
down_revision: str | Sequence[str] | None = "c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUSTOMER_ORDERS = """
CREATE VIEW corpus_customer_orders AS
SELECT
    c.id AS customer_id,
    c.code,
    c.name,
    count(o.id) AS order_count,
    count(o.id) FILTER (WHERE o.status = 'open') AS open_orders
FROM corpus_customers c
LEFT JOIN corpus_orders o ON o.customer_id = c.id
GROUP BY c.id, c.code, c.name
"""

NOTE_LABELS = """
CREATE VIEW corpus_note_labels AS
SELECT n.id, corpus_note_label(n.title, n.kind) AS label
FROM corpus_notes n
"""


def upgrade() -> None:
    op.execute(CUSTOMER_ORDERS)
    op.execute("COMMENT ON VIEW corpus_customer_orders IS 'Pedidos por cliente (todos os estados)'")
    op.execute(NOTE_LABELS)


def downgrade() -> None:
    op.execute("DROP VIEW corpus_note_labels")
    op.execute("DROP VIEW corpus_customer_orders")  # its comment goes with it
