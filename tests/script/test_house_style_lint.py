"""A column in the models' own style (String(n)) gives no unwaived squawk finding: the
house waiver is declared once, with its reason (script/lint.py HOUSE_WAIVERS)."""

from __future__ import annotations

from pathlib import Path

from alquimista_schema.runtime import guards
from alquimista_schema.script import directory, lint

NEW_COLUMN = '''"""A column in the house style."""
import sqlalchemy as sa
from alembic import op

revision = "t_house_style_column"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dry_run_log", sa.Column("canal_origem", sa.String(50), nullable=True))


def downgrade() -> None:
    op.drop_column("dry_run_log", "canal_origem")
'''


def test_a_house_style_column_is_lint_clean(scratch_scripts: Path) -> None:
    head = directory.script_directory().get_current_head()
    (scratch_scripts / "t_house_style_column.py").write_text(NEW_COLUMN.format(head=head))
    results = lint.lint()
    found = results["t_house_style_column"]
    assert [f.rule for f in found] == ["prefer-text-field"]  # squawk does see it
    assert all(f.waived and f.reason == lint.HOUSE_WAIVERS[f.rule] for f in found)
    assert lint.unwaived(results) == []


def test_warn_says_what_enforce_would_refuse(scratch_scripts: Path) -> None:
    """LINT_POLICY=warn (dev's default) warns where the developer is, not only in prod."""
    head = directory.script_directory().get_current_head()
    (scratch_scripts / "t_house_style_column.py").write_text(NEW_COLUMN.format(head=head))
    script = directory.script_directory()
    [rev] = [r for r in script.walk_revisions() if r.revision == "t_house_style_column"]
    [line] = guards.refuse_unlinted([rev], "warn")  # lint.json has no result for it yet
    assert line == ("lint: revision t_house_style_column has no lint result in "
                    "migrations/lint.json (stale): run `alquimista-schema lint --write` and "
                    "commit it (LINT_POLICY=warn here; prod enforces it)")
    assert guards.refuse_unlinted([rev], "off") == []
    lint.manifest_path().write_text(lint.to_manifest(lint.lint()))
    assert guards.refuse_unlinted([rev], "warn") == []
