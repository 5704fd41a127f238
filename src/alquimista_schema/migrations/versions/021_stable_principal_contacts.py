"""v_leads_com_contatos: show the oldest principal e-mail and phone, every time.

The legacy view took "the" principal e-mail and phone with ``LIMIT 1`` and no
ORDER BY, so a lead with two principal contacts could show either, differently
from one query to the next, and differently from get_leads_para_disparo (which,
since 020, picks the oldest). Both now pick the oldest (``created_at``, then id).
Every column keeps its name, type and position (``CREATE OR REPLACE VIEW`` could
only append; dashboards read these), and the view's comment and grants stay. The
downgrade restores the legacy view exactly.

Revision ID: 021
Revises: 020
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "021"
down_revision: str | Sequence[str] | None = "020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STABLE = """
CREATE OR REPLACE VIEW v_leads_com_contatos AS
SELECT
    l.lead_id,
    l.lead_id_externo,
    l.nome,
    l.contato_nome,
    l.documento,
    l.status,
    l.tags,
    l.data_ingestao,
    (SELECT e.email FROM lead_emails e
      WHERE e.lead_id = l.lead_id AND e.email_principal = TRUE
      ORDER BY e.created_at, e.email_id LIMIT 1) AS email_principal,
    (SELECT t.telefone FROM lead_telefones t
      WHERE t.lead_id = l.lead_id AND t.telefone_principal = TRUE
      ORDER BY t.created_at, t.telefone_id LIMIT 1) AS telefone_principal,
    (SELECT COUNT(*) FROM lead_emails WHERE lead_id = l.lead_id) AS total_emails,
    (SELECT COUNT(*) FROM lead_telefones WHERE lead_id = l.lead_id) AS total_telefones
FROM leads l
"""

LEGACY = """
CREATE OR REPLACE VIEW v_leads_com_contatos AS
SELECT
    l.lead_id,
    l.lead_id_externo,
    l.nome,
    l.contato_nome,
    l.documento,
    l.status,
    l.tags,
    l.data_ingestao,
    (SELECT email FROM lead_emails WHERE lead_id = l.lead_id AND email_principal = TRUE LIMIT 1) AS email_principal,
    (SELECT telefone FROM lead_telefones WHERE lead_id = l.lead_id AND telefone_principal = TRUE LIMIT 1) AS telefone_principal,
    (SELECT COUNT(*) FROM lead_emails WHERE lead_id = l.lead_id) AS total_emails,
    (SELECT COUNT(*) FROM lead_telefones WHERE lead_id = l.lead_id) AS total_telefones
FROM leads l
"""


def upgrade() -> None:
    op.execute(STABLE)


def downgrade() -> None:
    op.execute(LEGACY)
