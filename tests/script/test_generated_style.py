"""A revision written from the repository's template passes the repository's own lint as is.

The template (migrations/script.py.mako) is rendered the way Alembic renders it for
``revision --autogenerate``, and ruff checks the text as a file inside versions/, with the
repository's configuration: the top-level alembic/ folder once made ruff take Alembic for a
first-party package, so every generated file failed I001.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import util
from mako.template import Template

from alquimista_schema.script import directory
from tests.support.revisions import HEAD

ROOT = Path(__file__).resolve().parents[2]
BODIES = {
    "an added column": ("op.add_column('dry_run_log', sa.Column('canal_origem', sa.Text(), "
                        "nullable=True))", "op.drop_column('dry_run_log', 'canal_origem')"),
    "an empty revision": ("pass", "pass"),
}


@pytest.mark.parametrize("body", list(BODIES))
def test_a_rendered_revision_passes_ruff(body: str) -> None:
    upgrades, downgrades = BODIES[body]
    template = Path(directory.script_directory().dir) / "script.py.mako"
    text = Template(filename=str(template)).render_unicode(  # noqa: S702 (Python, not HTML)
        message="Add canal_origem", up_revision="zz_next", down_revision=HEAD,
        branch_labels=None, depends_on=None, create_date="2026-12-07 08:00:00",
        imports="", upgrades=upgrades, downgrades=downgrades,
        comma=util.format_as_comma)  # as ScriptDirectory.generate_revision passes it
    target = ROOT / "src/alquimista_schema/migrations/versions/zz_next_add_canal_origem.py"
    found = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename", str(target),
         "-"], input=text, capture_output=True, text=True, cwd=ROOT, check=False)
    assert found.returncode == 0, found.stdout + found.stderr
