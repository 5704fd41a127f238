"""Where the revision files live, and the Alembic configuration that finds them.

The script directory is package data (``alquimista_schema/migrations``), so an
installed copy or a Lambda bundle finds its revisions next to its own code, never
relative to the current directory or to the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
VERSIONS_LOCATION = SCRIPT_LOCATION / "versions"
FILE_TEMPLATE = "%%(rev)s_%%(slug)s"


def make_config(*, stdout: TextIO | None = None, **attributes: Any) -> Config:
    """Return an Alembic config for the package's own script directory.

    ``attributes`` land in ``config.attributes`` (``connection``, ``url``,
    ``target_metadata``...), the channel Alembic offers to hand objects to env.py.
    """
    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.attributes["embedded"] = True
    config.attributes.update(attributes)
    return config
