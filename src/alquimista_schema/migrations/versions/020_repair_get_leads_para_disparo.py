"""Repair get_leads_para_disparo: it failed on every call, and repeated leads.

The legacy function (revision lead_ingestion) declares ``tipo_contato varchar``
but its CASE yields ``text``, so every call fails with "structure of query does
not match function result type". Its plain LEFT JOINs also listed a lead once per
principal e-mail or phone. This version casts the CASE to varchar and picks one
contact per lead: the oldest principal, valid one (``created_at``, then id, so the
choice is stable). Same name, arguments, defaults and result columns, so every
caller keeps working. A single query needs no PL/pgSQL: it becomes LANGUAGE sql,
STABLE (it only reads). ``CREATE OR REPLACE`` keeps the function's comment and
grants. The downgrade restores the legacy function exactly, flaw included.

Revision ID: 020
Revises: 019
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "020"
down_revision: str | Sequence[str] | None = "019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPAIRED = """
CREATE OR REPLACE FUNCTION get_leads_para_disparo(
    p_limit integer DEFAULT 100,
    p_status character varying DEFAULT 'novo'
)
RETURNS TABLE (
    lead_id uuid,
    nome character varying,
    email character varying,
    telefone character varying,
    tipo_contato character varying
)
LANGUAGE sql
STABLE
AS $function$
    SELECT l.lead_id,
           l.nome,
           e.email,
           t.telefone,
           CAST(CASE
                    WHEN e.email IS NOT NULL AND t.telefone IS NOT NULL THEN 'ambos'
                    WHEN e.email IS NOT NULL THEN 'email'
                    WHEN t.telefone IS NOT NULL THEN 'telefone'
                    ELSE 'nenhum'
                END AS character varying) AS tipo_contato
      FROM leads l
      LEFT JOIN LATERAL (
           SELECT le.email FROM lead_emails le
            WHERE le.lead_id = l.lead_id AND le.email_principal AND le.valido_para_disparo
            ORDER BY le.created_at, le.email_id
            LIMIT 1) e ON true
      LEFT JOIN LATERAL (
           SELECT lt.telefone FROM lead_telefones lt
            WHERE lt.lead_id = l.lead_id AND lt.telefone_principal AND lt.valido_para_disparo
            ORDER BY lt.created_at, lt.telefone_id
            LIMIT 1) t ON true
     WHERE l.status = p_status
       AND (e.email IS NOT NULL OR t.telefone IS NOT NULL)
     ORDER BY l.data_ingestao ASC, l.lead_id
     LIMIT p_limit
$function$
"""

LEGACY = """
CREATE OR REPLACE FUNCTION get_leads_para_disparo(
    p_limit INTEGER DEFAULT 100,
    p_status VARCHAR DEFAULT 'novo'
)
RETURNS TABLE (
    lead_id UUID,
    nome VARCHAR,
    email VARCHAR,
    telefone VARCHAR,
    tipo_contato VARCHAR
) AS $$
BEGIN
    RETURN QUERY
    SELECT 
        l.lead_id,
        l.nome,
        e.email,
        t.telefone,
        CASE 
            WHEN e.email IS NOT NULL AND t.telefone IS NOT NULL THEN 'ambos'
            WHEN e.email IS NOT NULL THEN 'email'
            WHEN t.telefone IS NOT NULL THEN 'telefone'
            ELSE 'nenhum'
        END as tipo_contato
    FROM leads l
    LEFT JOIN lead_emails e ON e.lead_id = l.lead_id AND e.email_principal = TRUE AND e.valido_para_disparo = TRUE
    LEFT JOIN lead_telefones t ON t.lead_id = l.lead_id AND t.telefone_principal = TRUE AND t.valido_para_disparo = TRUE
    WHERE l.status = p_status
    AND (e.email IS NOT NULL OR t.telefone IS NOT NULL)
    ORDER BY l.data_ingestao ASC
    LIMIT p_limit;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.execute(REPAIRED)


def downgrade() -> None:
    op.execute(LEGACY)
