"""Validate the CHECK constraints added NOT VALID by revision 018.

``VALIDATE CONSTRAINT`` scans existing rows under a SHARE UPDATE EXCLUSIVE lock,
which does not block inserts or updates, and runs in its own transaction (one
transaction per revision), after 018 has committed. A row that violates a check
makes this revision fail and roll back, leaving the database at 018 with the
constraints still enforced for new rows: fix the rows, then upgrade again.

The downgrade restores 018's state exactly: the same constraints, NOT VALID.

Revision ID: 019
Revises: 018
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "019"
down_revision: str | Sequence[str] | None = "018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revision files are not importable by name (they start with digits).
CHECKS: list[tuple[str, str, str]] = [
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
    for table, name, _ in CHECKS:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def downgrade() -> None:
    for table, name, condition in reversed(CHECKS):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
