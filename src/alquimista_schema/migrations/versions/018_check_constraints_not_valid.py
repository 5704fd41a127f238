"""Add CHECK constraints on the enumerated columns, NOT VALID.

``dry_run_log.canal_decidido`` (whatsapp, email, calendar, none),
``dry_run_log.ambiente`` (dev, prod), ``leads.status`` (novo, em_disparo, agendado,
contato_efetuado, sem_sucesso, descartado) and ``lead_telefones.tipo_origem``
(movel, fixo, internacional, desconhecido, nao_classificado).

Why NOT VALID: adding a validated CHECK scans the whole table while holding an
ACCESS EXCLUSIVE lock, stalling every writer. NOT VALID takes that lock only for
the catalog update (bounded by ``lock_timeout``) and checks new rows from then on;
revision 019 validates existing rows in its own transaction under a lock that
lets writes through. NULLs pass a CHECK, so nullable columns stay nullable.

Revision ID: 018
Revises: 017
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "018"
down_revision: str | Sequence[str] | None = "017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = [
    ("dry_run_log", "ck_dry_run_log_canal_decidido",
     "canal_decidido IN ('whatsapp', 'email', 'calendar', 'none')"),
    ("dry_run_log", "ck_dry_run_log_ambiente", "ambiente IN ('dev', 'prod')"),
    ("leads", "ck_leads_status",
     "status IN ('novo', 'em_disparo', 'agendado', 'contato_efetuado', 'sem_sucesso', "
     "'descartado')"),
    ("lead_telefones", "ck_lead_telefones_tipo_origem",
     "tipo_origem IN ('movel', 'fixo', 'internacional', 'desconhecido', 'nao_classificado')"),
]


def upgrade() -> None:
    for table, name, condition in CHECKS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def downgrade() -> None:
    for table, name, _ in reversed(CHECKS):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
