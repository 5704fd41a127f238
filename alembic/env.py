"""Alembic environment for `alembic ...` run from the repository root.

Same one call as the package's own env.py (src/alquimista_schema/migrations/env.py):
online/offline mode, URL resolution (DATABASE_URL, else -x url=..., else alembic.ini,
else the local database), timeouts, the ownership filters, and for upgrade, downgrade
and stamp the same migration lock, standby guard, downgrade guard (-x confirm=REV,
ENVIRONMENT) and audit as `alquimista-schema` all live in alquimista_schema.runtime.environment.
"""

from alembic import context

from alquimista_schema.runtime.environment import run

run(context)  # type: ignore[arg-type]  # the module proxies EnvironmentContext
