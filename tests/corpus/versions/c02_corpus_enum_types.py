"""corpus: projects, with two PostgreSQL enum types created two different ways.

``corpus_status`` is a ``sa.Enum(..., name="corpus_status")``: ``op.create_table``
emits its ``CREATE TYPE`` before the table. ``corpus_priority`` is created with plain
SQL first and then referenced as ``postgresql.ENUM(..., create_type=False)``, so
create_table does not try to create it a second time (it would fail with "type
corpus_priority already exists"). One of its labels is non-ASCII.

Pitfall: ``op.drop_table`` never drops the enum types a table used, even the one
create_table made. Without the explicit ``DROP TYPE`` below, the downgrade leaves
both types behind and the next upgrade fails on ``CREATE TYPE corpus_status``.

Revision ID: c02
Revises: c01
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "c02"
down_revision: str | Sequence[str] | None = "c01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIORITIES = ("baixa", "normal", "alta", "urgência")


def upgrade() -> None:
    op.execute("CREATE TYPE corpus_priority AS ENUM ('baixa', 'normal', 'alta', 'urgência')")
    op.create_table(
        "corpus_projects",
        sa.Column("id", sa.Integer(), autoincrement=False, primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "active", "archived", name="corpus_status"),
            nullable=False,
            server_default="draft",
        ),
        sa.Column(
            "priority",
            postgresql.ENUM(*PRIORITIES, name="corpus_priority", create_type=False),
            nullable=False,
            server_default="normal",
        ),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("corpus_customers.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("corpus_projects")
    # drop_table leaves the types behind: drop them in reverse order of creation.
    op.execute("DROP TYPE corpus_status")
    op.execute("DROP TYPE corpus_priority")
