"""squawk over every revision, waivers with reasons, and the runner's enforce policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.errors import LintRefused
from alquimista_schema.script import directory, lint
from tests.support.helpers import Invoke
from tests.support.revisions import EXTRA, HEAD, REVISIONS

BAD_REVISION = f'''"""Index the lead e-mail (the unsafe way)."""

from alembic import op

revision = "{EXTRA}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX idx_dry_run_email ON dry_run_log (lead_email)")


def downgrade() -> None:
    op.execute("DROP INDEX idx_dry_run_email")
'''


@pytest.fixture
def with_bad_revision(scratch_scripts: Path) -> Path:
    """A copy of the script directory plus a revision squawk objects to, linted."""
    (scratch_scripts / f"{EXTRA}_email_index.py").write_text(BAD_REVISION)
    lint.manifest_path().write_text(lint.to_manifest(lint.lint()))
    return scratch_scripts.parent


def test_every_shipped_revision_is_clean_or_waived_with_a_reason() -> None:
    results = lint.lint()
    assert set(results) == set(REVISIONS)
    assert lint.unwaived(results) == []
    waived = [f for findings in results.values() for f in findings]
    assert waived, "squawk found nothing at all: is it really running?"
    assert all(f.reason and len(f.reason) > 20 for f in waived)


def test_committed_lint_results_are_current() -> None:
    """The bundle's lint.json must never go stale: regenerate with `lint --write`."""
    assert lint.manifest_path().read_text() == lint.to_manifest(lint.lint())


def test_an_unsafe_revision_is_found_and_refused_under_enforce(with_bad_revision: Path,
                                                               head_url: URL) -> None:
    result = CliRunner().invoke(main, ["lint"])
    assert result.exit_code == 1
    assert f"{EXTRA}:" in result.stdout
    assert "require-concurrent-index-creation (NOT WAIVED)" in result.stdout
    plan = command.plan(head_url, "head")
    assert [f.rule for f in plan.findings] == ["require-concurrent-index-creation"]
    with pytest.raises(LintRefused, match=f"revision {EXTRA} has 1 unwaived squawk finding"):
        command.upgrade(head_url, "head", run=command.Run(lint_policy="enforce"))
    assert command.current(head_url) == HEAD
    applied = command.upgrade(head_url, "head", run=command.Run(lint_policy="warn"))
    assert [a.revision for a in applied.applied] == [EXTRA]


def test_a_revision_missing_from_lint_json_is_refused_under_enforce(
        with_bad_revision: Path, head_url: URL) -> None:
    lint.manifest_path().write_text("{}")
    with pytest.raises(LintRefused, match="no lint result"):
        command.upgrade(head_url, "head", run=command.Run(lint_policy="enforce"))


def test_prod_lambda_enforces_and_plan_shows_findings(with_bad_revision: Path, invoke: Invoke,
                                                      head_url: URL, migrator_url: URL,
                                                      make_secret: object) -> None:
    from tests.support.helpers import secret_for

    command.upgrade(migrator_url, HEAD)
    arn = make_secret(secret_for(migrator_url))  # type: ignore[operator]
    plan = invoke({"action": "plan"}, secret=arn, env={"ENVIRONMENT": "prod"})
    assert [f["rule"] for f in plan["lint"]] == ["require-concurrent-index-creation"]
    refused = invoke({})
    assert refused["error_code"] == "LINT_REFUSED"
    assert command.current(migrator_url) == HEAD
    # prod snapshots before upgrading by default; this test is about the lint policy
    allowed = invoke({}, env={"ENVIRONMENT": "prod", "LINT_POLICY": "warn",
                              "SNAPSHOT_BEFORE_UPGRADE": "false"})
    assert allowed["status"] == "success"


IMPORTING_REVISION = f'''"""Takes its SQL from a project module, which can change later."""

from alembic import op

from alquimista_schema.schema import objects

revision = "{EXTRA}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None
SQUAWK_WAIVERS = {{"{lint.IMPORT_RULE}": "no waiver lifts this rule, whatever it says"}}


def upgrade() -> None:
    assert objects
    op.execute("SELECT 1")


def downgrade() -> None:
    pass
'''


def test_no_shipped_revision_imports_code_that_can_change() -> None:
    """The checksum covers a revision's own file: what it runs must all be in it."""
    for path in sorted(directory.VERSIONS_LOCATION.glob("*.py")):
        assert lint.import_findings(path.stem, path.read_text()) == [], path.name


@pytest.mark.parametrize(("source", "imported"), [
    ("from alquimista_schema.schema.objects import SQL", "alquimista_schema.schema.objects"),
    ("import alquimista_schema", "alquimista_schema"),
    ("def upgrade():\n    from tests.support import helpers", "tests.support"),
    ("from . import sibling", "."),
    ("import yaml", "yaml"),
    ("import importlib\nimportlib.import_module('x')", "(a dynamic import)"),
])
def test_an_import_of_code_that_can_change_is_a_finding(source: str, imported: str) -> None:
    [finding] = lint.import_findings("r", source)
    assert (finding.rule, finding.waived) == (lint.IMPORT_RULE, False)
    assert finding.message.startswith(f"imports {imported}: a revision may import only")


def test_stable_imports_are_no_finding() -> None:
    assert lint.import_findings("r", "from __future__ import annotations\nimport re\n"
                                     "import sqlalchemy as sa\nfrom alembic import op\n"
                                     "from collections.abc import Sequence\n") == []


def test_a_revision_importing_project_code_is_refused_under_enforce(
        scratch_scripts: Path, head_url: URL) -> None:
    (scratch_scripts / f"{EXTRA}_imports.py").write_text(IMPORTING_REVISION)
    lint.manifest_path().write_text(lint.to_manifest(lint.lint()))
    result = CliRunner().invoke(main, ["lint"])
    assert result.exit_code == 1
    assert f"{EXTRA}:5 {lint.IMPORT_RULE} (NOT WAIVED)" in result.stdout
    with pytest.raises(LintRefused, match=f"revision {EXTRA} has 1 unwaived"):
        command.upgrade(head_url, "head", run=command.Run(lint_policy="enforce"))
    assert command.current(head_url) == HEAD
