"""corpus: notes table seeded with op.bulk_insert (awkward text, arrays, NaN, ragged rows).

Values that break hand-written SQL go through ``op.bulk_insert`` as parameters: a
tab, ``%`` (also ``%s`` and ``%(name)s``, which look like driver placeholders),
single and double quotes, backslashes, non-ASCII text, newlines and a carriage
return, ``:word`` (never a bind parameter inside a value), ``text[]`` values
including the empty array ``[]``, and ``float("nan")`` / ``float("inf")`` in a
double precision column.

Pitfall: rows with different sets of keys. With the default ``multiinsert=True``,
Alembic runs ONE executemany whose columns are the FIRST row's keys: a later row
missing one of them fails ("A value is required for bind parameter 'kind', in
parameter group 1"), and a later row with an extra key has it silently dropped (the
server default wins). ``multiinsert=False`` emits one INSERT per row with exactly
that row's keys, so a row that omits ``kind`` or ``tags`` gets the server default.
The ``sa.table`` columns carry types: offline ``--sql`` needs them to render literals.

Revision ID: c04
Revises: c03
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "c04"
down_revision: str | Sequence[str] | None = "c03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

notes = sa.table(
    "corpus_notes",
    sa.column("id", sa.Integer()),
    sa.column("customer_id", sa.Integer()),
    sa.column("title", sa.String()),
    sa.column("body", sa.Text()),
    sa.column("kind", sa.String()),
    sa.column("weight", sa.Float()),
    sa.column("tags", postgresql.ARRAY(sa.Text())),
)

ROWS: list[dict[str, Any]] = [
    {"id": 1, "customer_id": 1, "title": "tab", "body": "col1\tcol2\tcol3", "kind": "tsv",
     "weight": 1.5, "tags": ["a", "b"]},
    {"id": 2, "customer_id": None, "title": "percent",
     "body": "100% done; 50%% literal; %s and %(name)s are not placeholders", "kind": "plain",
     "weight": 0.0, "tags": []},
    {"id": 3, "customer_id": 2, "title": "quotes", "body": "it's \"quoted\" — O'Brien said ''hi''",
     "kind": "plain", "weight": float("nan"), "tags": ["it's", 'say "hi"']},
    {"id": 4, "customer_id": 3, "title": "backslash", "body": "C:\\temp\\new and \\d+ and \\",
     "kind": "plain", "weight": -2.25, "tags": ["back\\slash", "{brace}", "comma,inside"]},
    # From here on rows omit columns: kind and tags come from the server defaults.
    {"id": 5, "title": "non-ASCII", "body": "ação, coração, 日本, Ελλάδα, emoji 🎉",
     "weight": float("inf"), "tags": ["ação", "日本"]},
    {"id": 6, "title": "newline", "body": "line1\nline2\r\nline3\n"},
    {"id": 7, "title": "colon", "body": "value :not_a_param, ':x' and a::text cast",
     "tags": [""], "kind": "colon"},
    {"id": 8, "title": "nulls", "body": "", "weight": None, "tags": ["NULL", "null"]},
]


def upgrade() -> None:
    op.create_table(
        "corpus_notes",
        sa.Column("id", sa.Integer(), autoincrement=False, primary_key=True),
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("corpus_customers.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False, server_default="plain"),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False,
                  server_default=sa.text("'{}'::text[]")),
    )
    # One INSERT per row: the rows do not all have the same keys (see the docstring).
    op.bulk_insert(notes, ROWS, multiinsert=False)


def downgrade() -> None:
    op.drop_table("corpus_notes")
