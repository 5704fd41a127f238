"""The click door: options in, one library call out, exit codes."""

from alquimista_schema.cli.commands import main

__all__ = ["main"]
