-- Legacy migration 017, as the old Node.js runner applied it (BEGIN/COMMIT around it).
-- A test stand-in written from CONTEXT.md's facts, not from the package's revisions.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS dry_run_log (
    log_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL,
    lead_id UUID,                       -- no FK: the log outlives the lead
    lead_nome VARCHAR(500),
    lead_telefone VARCHAR(50),
    lead_email VARCHAR(255),
    lead_documento VARCHAR(20),
    canal_decidido VARCHAR(20) NOT NULL, -- whatsapp | email | calendar | none
    motivo_decisao TEXT NOT NULL,
    template_selecionado VARCHAR(100),
    disparo_seria_executado BOOLEAN DEFAULT true,
    razao_bloqueio TEXT,
    ambiente VARCHAR(10) DEFAULT 'dev',  -- dev | prod
    feature_flag_enabled BOOLEAN DEFAULT false,
    created_at TIMESTAMP DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_dry_run_tenant ON dry_run_log(tenant_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_dry_run_canal ON dry_run_log(canal_decidido);
CREATE INDEX IF NOT EXISTS idx_dry_run_ambiente ON dry_run_log(ambiente, created_at DESC);

COMMENT ON TABLE dry_run_log IS 'Log de auditoria para testes dry-run do Micro Agente de Disparos & Agendamentos';
COMMENT ON COLUMN dry_run_log.canal_decidido IS 'Canal escolhido pela lógica de decisão (whatsapp, email, calendar, none)';
COMMENT ON COLUMN dry_run_log.motivo_decisao IS 'Explicação de por que este canal foi escolhido';
COMMENT ON COLUMN dry_run_log.disparo_seria_executado IS 'Se true, o disparo seria executado em modo real (sem bloqueios)';
COMMENT ON COLUMN dry_run_log.razao_bloqueio IS 'Motivo pelo qual o disparo não seria executado (ex: rate limit, horário não comercial)';
COMMENT ON COLUMN dry_run_log.feature_flag_enabled IS 'Valor da feature flag MICRO_AGENT_DISPARO_ENABLED no momento do teste';
