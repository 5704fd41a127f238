"""Lead ingestion schema, exactly as the legacy ingestion script created it.

Tables ``leads``, ``lead_telefones`` and ``lead_emails``, their indexes, the views
``v_leads_com_contatos`` and ``v_stats_ingestao``, the function
``get_leads_para_disparo`` and the ``updated_at`` trigger on ``leads``.

The trigger calls ``public.update_updated_at_column()``, a function the older
platform shares with about twenty triggers of its own schemas. It is created only
where it is missing (marked with a comment), and the downgrade drops it only when
this revision created it *and* no trigger uses it any more. A function the
platform made is never replaced or dropped.

The SQL is a snapshot: later changes to these objects come as new revisions, and
the current definitions live in ``alquimista_schema.schema_objects``.

Revision ID: lead_ingestion
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "lead_ingestion"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARKER = "created by alquimista-schema revision lead_ingestion"

# squawk findings waived, with why (see alquimista_schema.lint).
SQUAWK_WAIVERS = {
    "prefer-text-field": "legacy column types are reproduced exactly, so databases the "
                         "legacy files built can be adopted; the tables are new here, so no "
                         "rewrite or lock on live data happens",
    "prefer-timestamp-tz": "legacy columns are timestamp without time zone; changing them "
                           "would break adoption and every reader of these tables",
}

UPGRADE = [
    f"""
DO $do$
BEGIN
    IF to_regprocedure('public.update_updated_at_column()') IS NULL THEN
        CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            NEW.updated_at = NOW();
            RETURN NEW;
        END;
        $fn$;
        COMMENT ON FUNCTION public.update_updated_at_column() IS '{MARKER}';
    END IF;
END
$do$;
""",
    """
CREATE TABLE leads (
    lead_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id_externo VARCHAR(255) NOT NULL UNIQUE,
    origem_arquivo VARCHAR(255) NOT NULL,
    origem_aba VARCHAR(100) NOT NULL,
    nome VARCHAR(255),
    contato_nome VARCHAR(255),
    documento VARCHAR(20),
    email_raw TEXT,
    telefone_raw TEXT,
    status VARCHAR(50) DEFAULT 'novo',
    tags JSONB DEFAULT '[]'::jsonb,
    data_ingestao TIMESTAMP DEFAULT NOW(),
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
""",
    "CREATE INDEX idx_leads_status ON leads (status);",
    "CREATE INDEX idx_leads_externo ON leads (lead_id_externo);",
    "CREATE INDEX idx_leads_origem ON leads (origem_arquivo, origem_aba);",
    "CREATE INDEX idx_leads_data_ingestao ON leads (data_ingestao DESC);",
    "CREATE INDEX idx_leads_documento ON leads (documento) WHERE documento IS NOT NULL;",
    """
CREATE TABLE lead_telefones (
    telefone_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id UUID NOT NULL REFERENCES leads(lead_id) ON DELETE CASCADE,
    telefone VARCHAR(50) NOT NULL,
    telefone_principal BOOLEAN DEFAULT false,
    tipo_origem VARCHAR(50) DEFAULT 'nao_classificado',
    valido_para_disparo BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW()
);
""",
    "CREATE INDEX idx_lead_telefones_lead ON lead_telefones (lead_id);",
    "CREATE INDEX idx_lead_telefones_valido ON lead_telefones (valido_para_disparo);",
    "CREATE INDEX idx_lead_telefones_principal ON lead_telefones (lead_id, telefone_principal);",
    "CREATE INDEX idx_lead_telefones_tipo ON lead_telefones (tipo_origem);",
    """
CREATE TABLE lead_emails (
    email_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id UUID NOT NULL REFERENCES leads(lead_id) ON DELETE CASCADE,
    email VARCHAR(255) NOT NULL,
    email_principal BOOLEAN DEFAULT false,
    valido_para_disparo BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW()
);
""",
    "CREATE INDEX idx_lead_emails_lead ON lead_emails (lead_id);",
    "CREATE INDEX idx_lead_emails_valido ON lead_emails (valido_para_disparo);",
    "CREATE INDEX idx_lead_emails_principal ON lead_emails (lead_id, email_principal);",
    "CREATE INDEX idx_lead_emails_email ON lead_emails (email);",
    """
CREATE TRIGGER update_leads_updated_at
    BEFORE UPDATE ON leads
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
""",
    """
CREATE OR REPLACE VIEW v_leads_com_contatos AS
SELECT l.lead_id,
       l.lead_id_externo,
       l.origem_arquivo,
       l.origem_aba,
       l.nome,
       l.contato_nome,
       l.documento,
       l.status,
       l.tags,
       l.data_ingestao,
       (SELECT e.email FROM lead_emails e
         WHERE e.lead_id = l.lead_id AND e.email_principal = true
         ORDER BY e.created_at LIMIT 1) AS email_principal,
       (SELECT t.telefone FROM lead_telefones t
         WHERE t.lead_id = l.lead_id AND t.telefone_principal = true
         ORDER BY t.created_at LIMIT 1) AS telefone_principal,
       (SELECT count(*) FROM lead_emails e WHERE e.lead_id = l.lead_id) AS total_emails,
       (SELECT count(*) FROM lead_telefones t WHERE t.lead_id = l.lead_id) AS total_telefones
  FROM leads l;
""",
    """
CREATE OR REPLACE VIEW v_stats_ingestao AS
SELECT origem_arquivo,
       count(*) AS total_leads,
       count(DISTINCT documento) AS leads_com_documento,
       min(data_ingestao) AS primeira_ingestao,
       max(data_ingestao) AS ultima_ingestao,
       count(*) FILTER (WHERE status = 'novo') AS status_novo,
       count(*) FILTER (WHERE status = 'em_disparo') AS status_em_disparo,
       count(*) FILTER (WHERE status = 'agendado') AS status_agendado,
       count(*) FILTER (WHERE status = 'contato_efetuado') AS status_contato_efetuado
  FROM leads
 GROUP BY origem_arquivo
 ORDER BY max(data_ingestao) DESC;
""",
    """
CREATE OR REPLACE FUNCTION get_leads_para_disparo(
    p_limit integer DEFAULT 100,
    p_status character varying DEFAULT 'novo'
)
RETURNS TABLE (
    lead_id uuid,
    nome character varying,
    email character varying,
    telefone character varying,
    tipo_contato text
)
LANGUAGE sql
STABLE
AS $function$
    SELECT l.lead_id,
           l.nome,
           e.email,
           t.telefone,
           CASE
               WHEN e.email IS NOT NULL AND t.telefone IS NOT NULL THEN 'ambos'
               WHEN e.email IS NOT NULL THEN 'email'
               ELSE 'telefone'
           END AS tipo_contato
      FROM leads l
      LEFT JOIN LATERAL (
           SELECT le.email FROM lead_emails le
            WHERE le.lead_id = l.lead_id AND le.email_principal AND le.valido_para_disparo
            ORDER BY le.created_at LIMIT 1) e ON true
      LEFT JOIN LATERAL (
           SELECT lt.telefone FROM lead_telefones lt
            WHERE lt.lead_id = l.lead_id AND lt.telefone_principal AND lt.valido_para_disparo
            ORDER BY lt.created_at LIMIT 1) t ON true
     WHERE l.status = p_status
       AND (e.email IS NOT NULL OR t.telefone IS NOT NULL)
     ORDER BY l.data_ingestao ASC
     LIMIT p_limit
$function$;
""",
]

DOWNGRADE = [
    "DROP FUNCTION get_leads_para_disparo(integer, character varying);",
    "DROP VIEW v_stats_ingestao;",
    "DROP VIEW v_leads_com_contatos;",
    "DROP TABLE lead_emails;",
    "DROP TABLE lead_telefones;",
    "DROP TABLE leads;",
    f"""
DO $do$
BEGIN
    IF to_regprocedure('public.update_updated_at_column()') IS NOT NULL
       AND obj_description(to_regprocedure('public.update_updated_at_column()'), 'pg_proc')
           = '{MARKER}'
       AND NOT EXISTS (SELECT 1 FROM pg_trigger
                        WHERE tgfoid = to_regprocedure('public.update_updated_at_column()'))
    THEN
        DROP FUNCTION public.update_updated_at_column();
    END IF;
END
$do$;
""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement.strip().rstrip(";"))


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement.strip().rstrip(";"))
