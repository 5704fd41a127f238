"""`python -m alquimista_schema` runs the CLI."""

from alquimista_schema.cli import main

main()
