"""A value the runner refuses for each setting it reads from its environment: one table for
the every-door refusal test (the local doors' settings) and the CDK check's (all of them)."""

from __future__ import annotations

LOCAL = {
    "ENVIRONMENT": "moon",
    "LINT_POLICY": "strict",
    "TABLE_POLICY": "strict",
    "SNAPSHOT_BEFORE_UPGRADE": "maybe",
    "DB_CLUSTER_IDENTIFIER": "1-not_a_cluster",
    "SNAPSHOT_KEEP": "0",
    "LOCK_RETRIES": "99",
    "ALQUIMISTA_LOCK_TIMEOUT": "\u0665s",  # an Arabic-Indic 5: \d takes it, PostgreSQL not
    "ALQUIMISTA_STATEMENT_TIMEOUT": "abc",
}
"""settings.LOCAL_KEYS: what the CLI and plain alembic read as the Lambda does."""

FUNCTION_ONLY = {
    "CONNECT_TIMEOUT_SECONDS": "1e1",
    "CONNECT_BUDGET_SECONDS": "-1",
    "DEADLINE_MARGIN_SECONDS": "0",
    "LOCK_WAIT_SECONDS": "\u0665",
    "SNAPSHOT_WAIT_SECONDS": "inf",
}
"""The numbers only the Lambda reads (settings.NUMBERS)."""
