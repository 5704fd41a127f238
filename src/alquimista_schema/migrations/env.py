"""Alembic environment of the installed package; the logic is in the library."""

from alembic import context

from alquimista_schema.runtime.environment import run

run(context)  # type: ignore[arg-type]  # the module proxies EnvironmentContext
