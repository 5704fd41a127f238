"""Lead ingestion schema, exactly as the legacy ingestion script created it.

Tables ``leads``, ``lead_telefones`` and ``lead_emails``, their indexes, the views
``v_leads_com_contatos`` and ``v_stats_ingestao``, the function
``get_leads_para_disparo``, the ``updated_at`` trigger on ``leads`` and every
comment, as the live databases hold them (docs/CONTEXT.md, "The live objects, exactly").
That includes the function's flaw: it fails on every call (its CASE yields text
where the result says varchar). It is reproduced here, so databases the legacy
script built are adopted at this revision, and repaired by revision 020.

The trigger calls ``public.update_updated_at_column()``, a function the older
platform shares with about twenty triggers of its own schemas. It is created only
where it is missing, and never replaced or dropped (a downgrade leaves it, as it
leaves pgcrypto): dropping or replacing it would break the platform's triggers.

The SQL is a snapshot: later changes to these objects come as new revisions, and
the current definitions live in ``alquimista_schema.schema.objects``.

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

# squawk findings waived, with why (see alquimista_schema.script.lint).
SQUAWK_WAIVERS = {
    "prefer-text-field": "legacy column types are reproduced exactly, so databases the "
                         "legacy files built can be adopted; the tables are new here, so no "
                         "rewrite or lock on live data happens",
    "prefer-timestamp-tz": "legacy columns are timestamp without time zone; changing them "
                           "would break adoption and every reader of these tables",
}

UPGRADE = [
    """
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
    tags JSONB DEFAULT '[]',
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
CREATE TRIGGER update_leads_updated_at
    BEFORE UPDATE ON leads
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();
""",
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
CREATE VIEW v_leads_com_contatos AS
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
FROM leads l;
""",
    """
CREATE VIEW v_stats_ingestao AS
SELECT
    origem_arquivo,
    COUNT(*) AS total_leads,
    COUNT(DISTINCT documento) FILTER (WHERE documento IS NOT NULL) AS leads_com_documento,
    MIN(data_ingestao) AS primeira_ingestao,
    MAX(data_ingestao) AS ultima_ingestao,
    COUNT(*) FILTER (WHERE status = 'novo') AS leads_novos,
    COUNT(*) FILTER (WHERE status = 'em_disparo') AS leads_em_disparo,
    COUNT(*) FILTER (WHERE status = 'agendado') AS leads_agendados,
    COUNT(*) FILTER (WHERE status = 'contato_efetuado') AS leads_contatados
FROM leads
GROUP BY origem_arquivo
ORDER BY ultima_ingestao DESC;
""",
    # Broken as the live ones are: see the module docstring and revision 020.
    """
CREATE FUNCTION get_leads_para_disparo(
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
$$ LANGUAGE plpgsql;
""",
    "COMMENT ON TABLE leads IS 'Tabela principal de leads importados de planilhas';",
    "COMMENT ON COLUMN leads.lead_id IS 'ID interno único do lead';",
    "COMMENT ON COLUMN leads.lead_id_externo IS 'ID externo para rastreabilidade (arquivo:linha)';",
    "COMMENT ON COLUMN leads.origem_arquivo IS 'Nome do arquivo de origem';",
    "COMMENT ON COLUMN leads.origem_aba IS 'Nome da aba da planilha';",
    "COMMENT ON COLUMN leads.email_raw IS 'String bruta de emails (pode conter múltiplos separados por |)';",
    "COMMENT ON COLUMN leads.telefone_raw IS 'String bruta de telefones (pode conter múltiplos separados por |)';",
    "COMMENT ON COLUMN leads.status IS 'Status do lead: novo, em_disparo, agendado, contato_efetuado, sem_sucesso, descartado';",
    "COMMENT ON COLUMN leads.tags IS 'Tags adicionais em formato JSON array';",
    "COMMENT ON TABLE lead_telefones IS 'Telefones explodidos de cada lead';",
    "COMMENT ON COLUMN lead_telefones.telefone_principal IS 'Indica se é o telefone principal (primeiro da lista)';",
    "COMMENT ON COLUMN lead_telefones.tipo_origem IS 'Tipo: movel, fixo, internacional, desconhecido, nao_classificado';",
    "COMMENT ON COLUMN lead_telefones.valido_para_disparo IS 'Se passou nas validações de formato e DDD';",
    "COMMENT ON TABLE lead_emails IS 'Emails explodidos de cada lead';",
    "COMMENT ON COLUMN lead_emails.email_principal IS 'Indica se é o email principal (primeiro da lista)';",
    "COMMENT ON COLUMN lead_emails.valido_para_disparo IS 'Se passou nas validações de formato e sintaxe';",
    "COMMENT ON VIEW v_leads_com_contatos IS 'View de leads com seus contatos principais agregados';",
    "COMMENT ON VIEW v_stats_ingestao IS 'Estatísticas de ingestão por arquivo';",
    "COMMENT ON FUNCTION get_leads_para_disparo(integer, character varying) IS 'Busca leads prontos para disparo com contatos válidos';",
]

# update_updated_at_column() stays: it is shared with the platform (see the docstring).
DOWNGRADE = [
    "DROP FUNCTION get_leads_para_disparo(integer, character varying);",
    "DROP VIEW v_stats_ingestao;",
    "DROP VIEW v_leads_com_contatos;",
    "DROP TABLE lead_emails;",
    "DROP TABLE lead_telefones;",
    "DROP TABLE leads;",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement.strip().rstrip(";"))


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement.strip().rstrip(";"))
