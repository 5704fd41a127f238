"""corpus: a DO block that creates an enum type and an audit table only if they are missing.

The idempotent pattern for objects that may already exist on some databases (made by
hand, or by an older script): an anonymous ``DO $$ BEGIN ... END $$;`` block checks
the catalogs and creates ``corpus_channel`` and ``corpus_audit`` (with one row) when
absent. Executed with ``op.execute``: the ``%`` of ``RAISE NOTICE`` is safe there (SQLAlchemy
doubles it for psycopg2 and the driver undoes that); nothing in it looks like ``:word``.

The downgrade drops both with ``IF EXISTS``. On the databases this corpus builds
they never exist before c06, so the downgrade exactly undoes the upgrade.

Revision ID: c06
Revises: c05
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c06"
down_revision: str | Sequence[str] | None = "c05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE_IF_MISSING = """
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' AND t.typname = 'corpus_channel'
    ) THEN
        CREATE TYPE public.corpus_channel AS ENUM ('email', 'sms', 'whatsapp');
    END IF;

    IF to_regclass('public.corpus_audit') IS NULL THEN
        CREATE TABLE public.corpus_audit (
            id integer PRIMARY KEY,
            channel public.corpus_channel NOT NULL,
            message text NOT NULL
        );
        INSERT INTO public.corpus_audit (id, channel, message)
        VALUES (1, 'email', 'created by the DO block; 100% idempotent');
        RAISE NOTICE 'created % with % row(s)', 'corpus_audit', 1;
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.execute(CREATE_IF_MISSING)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS corpus_audit")
    op.execute("DROP TYPE IF EXISTS corpus_channel")
