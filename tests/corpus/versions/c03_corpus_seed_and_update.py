"""corpus: seed customers, orders and projects through the connection, then update by binds.

A data migration the way it is often written: ``op.get_bind().execute(sa.text(...),
params)`` with a list of dicts (executemany) and with a single dict, then
``op.execute(sa.text("UPDATE ... WHERE reference = :ref").bindparams(...))``.
Bound values may hold anything (``:transfer``, ``%``, quotes): only the SQL text is
scanned for ``:name`` parameters, never the values.

Pitfall (offline): in ``--sql`` mode ``op.get_bind()`` is a mock connection that
renders the statement with ``literal_binds`` but never sees the parameters given to
``execute()``: every ``:name`` comes out as ``NULL``. Only the ``.bindparams(...)``
form renders its values offline. The downgrade uses that form only, so it renders
correctly offline too (the project's downgrade guard renders downgrades offline).

Revision ID: c03
Revises: c02
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c03"
down_revision: str | Sequence[str] | None = "c02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# created_at is given: its server default (now()) must not decide stored rows.
CREATED = datetime(2024, 1, 15, 9, 30)
CUSTOMERS = [
    {"id": 1, "code": "0001", "name": "Ana Conceição", "score": 80, "created_at": CREATED},
    {"id": 2, "code": "0002", "name": "Bob O'Neil", "score": 55, "created_at": CREATED},
    {"id": 3, "code": "0003", "name": 'Carla "CJ" Jones', "score": 10, "created_at": CREATED},
]

ORDERS = [  # amounts always carry two decimals: c10's round trip through numeric keeps them
    {"id": 10, "customer_id": 1, "reference": "REF-10", "amount": "10.50", "status": "open"},
    {"id": 11, "customer_id": 1, "reference": "REF-11", "amount": "3.00", "status": "paid"},
    {"id": 12, "customer_id": 2, "reference": "REF-12", "amount": "1234.56", "status": "open"},
    {"id": 13, "customer_id": 3, "reference": "REF-13", "amount": "0.99", "status": "cancelled"},
]


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text("INSERT INTO corpus_customers (id, code, name, score, created_at) "
                "VALUES (:id, :code, :name, :score, :created_at)"),
        CUSTOMERS,
    )
    bind.execute(
        sa.text("INSERT INTO corpus_orders (id, customer_id, reference, amount, status) "
                "VALUES (:id, :customer_id, :reference, :amount, :status)"),
        ORDERS,
    )
    bind.execute(
        sa.text("INSERT INTO corpus_projects (id, name, status, priority, owner_id) "
                "VALUES (:id, :name, CAST(:status AS corpus_status), "
                "CAST(:priority AS corpus_priority), :owner_id)"),
        [
            {"id": 1, "name": "Migração", "status": "active", "priority": "alta", "owner_id": 1},
            {"id": 2, "name": "Arquivo 2019", "status": "archived", "priority": "baixa",
             "owner_id": None},
        ],
    )
    # Single dict; status and priority come from the server defaults.
    bind.execute(
        sa.text("INSERT INTO corpus_projects (id, name, owner_id) VALUES (:id, :name, :owner)"),
        {"id": 3, "name": "Rascunho :draft", "owner": 2},
    )
    op.execute(
        sa.text("UPDATE corpus_orders SET status = :status, note = :note WHERE reference = :ref")
        .bindparams(status="paid", note="paid: via :transfer (100% — d'Ávila)", ref="REF-12")
    )


def downgrade() -> None:
    op.execute(
        sa.text("UPDATE corpus_orders SET status = :status, note = NULL WHERE reference = :ref")
        .bindparams(status="open", ref="REF-12")
    )
    op.execute("DELETE FROM corpus_projects WHERE id IN (1, 2, 3)")
    op.execute("DELETE FROM corpus_orders WHERE id IN (10, 11, 12, 13)")
    op.execute("DELETE FROM corpus_customers WHERE id IN (1, 2, 3)")
