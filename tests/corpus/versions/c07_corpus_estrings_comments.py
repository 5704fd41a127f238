"""corpus: E-strings and comments with quotes, backslashes and non-ASCII text.

A row inserted with an ``E'...'`` literal (``\\n``, ``\\t``, ``\\\\`` and ``\\'``
escapes) through ``op.execute``; the Python source is a raw string so that the
backslashes reach PostgreSQL untouched. Comments set three ways: ``COMMENT ON
TABLE/COLUMN`` in SQL (doubled single quotes, an E-string with a newline),
``op.create_table_comment``, and ``comment=`` on ``op.add_column`` and
``op.alter_column``. Alembic quotes the comment literals itself.

Pitfall: a backslash in a comment given to Alembic. SQLAlchemy renders it according
to the server's ``standard_conforming_strings`` (on since PostgreSQL 9.1): online it
is written once, as it should be. The downgrade must pass ``existing_comment`` /
``existing_type`` for ``alter_column`` and ``drop_table_comment`` (needed by other
backends, and by autogenerate's reverse rendering).

Revision ID: c07
Revises: c06
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c07"
down_revision: str | Sequence[str] | None = "c06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUSTOMERS_COMMENT = "Clientes do corpus — \"aspas\", it's, ação/coração, 日本, C:\\temp"
NICKNAME_COMMENT = "Apelido (opcional): \"nick\", l'été, 100%"
BODY_COMMENT = "Corpo da nota: texto livre; pode conter :todo e %s"


def upgrade() -> None:
    op.execute(
        r"INSERT INTO corpus_notes (id, title, body, kind) VALUES "
        r"(30, 'e-string', E'line1\nline2\ttabbed \\ backslash \'quoted\' ação', 'estring')"
    )
    op.execute(
        "COMMENT ON TABLE corpus_orders IS "
        "'Pedidos do corpus: \"aspas\", d''Ávila, coração, 日本'"
    )
    op.execute(
        r"COMMENT ON COLUMN corpus_orders.reference IS "
        r"E'Referência externa\nsegunda linha: it\'s unique per customer'"
    )
    op.create_table_comment("corpus_customers", CUSTOMERS_COMMENT)
    op.add_column(
        "corpus_customers",
        sa.Column("nickname", sa.String(length=50), nullable=True, comment=NICKNAME_COMMENT),
    )
    op.alter_column(
        "corpus_notes",
        "body",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=BODY_COMMENT,
    )


def downgrade() -> None:
    op.alter_column(
        "corpus_notes",
        "body",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=None,
        existing_comment=BODY_COMMENT,
    )
    op.drop_column("corpus_customers", "nickname")
    op.drop_table_comment("corpus_customers", existing_comment=CUSTOMERS_COMMENT)
    op.execute("COMMENT ON COLUMN corpus_orders.reference IS NULL")
    op.execute("COMMENT ON TABLE corpus_orders IS NULL")
    op.execute("DELETE FROM corpus_notes WHERE id = 30")
