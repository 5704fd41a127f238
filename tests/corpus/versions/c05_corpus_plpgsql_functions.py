"""corpus: dollar-quoted PL/pgSQL functions and a trigger, and the ':word' bind-parameter trap.

``op.execute("...")`` wraps a plain string in ``sa.text()``, which turns every
``:word`` not preceded by a word character, a colon or a backslash into a bind
parameter, inside string literals, dollar-quoted bodies and ``--`` comments alike.
``LIKE '%:todo%'`` in a function body therefore fails online with "A value is
required for bind parameter 'todo'", and offline (``literal_binds``) it is silently
rendered as ``'%NULL%'``. (``:=``, ``::text``, ``'a:b'`` and ``08:30`` are safe.)

Two fixes people use, one per function:

* ``corpus_normalize_note()`` (tag ``$$``) goes through ``op.execute(sa.text(...))``
  with each such colon escaped as ``\\:``; sa.text() removes the backslash, so the
  stored body reads ``:todo``. A raw string keeps both ``\\:`` and the regex ``\\s+``.
* ``corpus_note_label()`` (tag ``$fn$``, because its body contains ``'$$'``) is sent
  with ``op.get_bind().exec_driver_sql(...)``: no ``sa.text()``, so ``:todo`` is not
  touched. Second trap: exec_driver_sql still hands psycopg2 an (empty) parameter
  dict, so psycopg2 reads every ``%`` of the body as a placeholder and ``format('[%s]
  %s', ...)`` fails with "TypeError: ... immutabledict is not a sequence". The
  ``no_parameters`` execution option (per call: ``Connection.execution_options()``
  would change Alembic's connection for the rest of the run) makes it call
  ``cursor.execute(sql)`` without parameters. Offline, ``op.get_bind()`` is a mock
  connection without ``exec_driver_sql``; there the same SQL is emitted through
  ``sa.text()`` with every colon escaped.

The trigger then fires on a row inserted here (fixed id, fixed values).

Revision ID: c05
Revises: c04
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = "c05"
down_revision: str | Sequence[str] | None = "c04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Raw string: "\:" reaches sa.text() (which unescapes it) and "\s" reaches PostgreSQL.
NORMALIZE_NOTE = r"""
CREATE FUNCTION corpus_normalize_note() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_title text;  -- the cleaned title; never empty
BEGIN
    /* Collapse runs of blanks (tabs too); an empty title becomes 'untitled'.
       Fires BEFORE INSERT OR UPDATE OF title, body; returns the row. */
    v_title := btrim(regexp_replace(NEW.title, '\s+', ' ', 'g'));
    IF v_title = '' THEN
        v_title := 'untitled';
    END IF;
    NEW.title := v_title;
    -- a body mentioning \:todo makes the note a todo
    IF NEW.body LIKE '%\:todo%' THEN
        NEW.kind := 'todo';
    END IF;
    RETURN NEW;
END;
$$
"""

# Sent verbatim (exec_driver_sql, no parameters): no escaping at all.
NOTE_LABEL = """
CREATE FUNCTION corpus_note_label(p_title text, p_kind text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    -- the '$$' below is why this body needs a named dollar-quote tag
    p_title := replace(p_title, '$$', '$');
    IF p_kind = 'todo' THEN
        RETURN ':todo ' || p_title;  /* shown as-is by corpus_note_labels; */
    END IF;
    RAISE DEBUG 'corpus_note_label: kind % -> %', p_kind, p_title;
    RETURN format('[%s] %s', p_kind, p_title);
END;
$fn$
"""

TRIGGER = """
CREATE TRIGGER corpus_notes_normalize
BEFORE INSERT OR UPDATE OF title, body ON corpus_notes
FOR EACH ROW EXECUTE FUNCTION corpus_normalize_note()
"""


def execute_verbatim(sql: str) -> None:
    """Run ``sql`` without sa.text()'s bind-parameter parsing (online and offline)."""
    if context.is_offline_mode():
        op.execute(sa.text(sql.replace(":", "\\:")))
    else:
        op.get_bind().exec_driver_sql(sql, execution_options={"no_parameters": True})


def upgrade() -> None:
    op.execute(sa.text(NORMALIZE_NOTE))
    execute_verbatim(NOTE_LABEL)
    op.execute(TRIGGER)
    op.execute(
        sa.text("INSERT INTO corpus_notes (id, title, body) VALUES (:id, :title, :body)")
        .bindparams(id=20, title="  spaced    out\ttitle ", body="remember :todo by Friday")
    )


def downgrade() -> None:
    op.execute("DELETE FROM corpus_notes WHERE id = 20")
    op.execute("DROP TRIGGER corpus_notes_normalize ON corpus_notes")
    op.execute("DROP FUNCTION corpus_note_label(text, text)")
    op.execute("DROP FUNCTION corpus_normalize_note()")
