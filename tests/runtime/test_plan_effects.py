"""``plan`` against the live table (issue 29): on a table of 1,000,000 rows, an added column
with a volatile default is graded a rewrite that blocks writes, with its size; a
``NOT VALID`` constraint touches only the catalog; ``VALIDATE`` scans without blocking
writes. The library function, the CLI command and the Lambda action say the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.aws.runner import Runner
from alquimista_schema.cli import main
from tests.support.helpers import full, plain
from tests.support.revisions import scratch_revision

BIG = scratch_revision("zz_big", "c13", "CREATE TABLE zz_big (i int)", "DROP TABLE zz_big",
                       "A big table.")

CHANGES = scratch_revision("zz_changes", "zz_big", [
    "ALTER TABLE zz_big ADD COLUMN u uuid DEFAULT gen_random_uuid()",
    "ALTER TABLE zz_big ADD CONSTRAINT zz_big_positive CHECK (i > 0) NOT VALID",
    "ALTER TABLE zz_big VALIDATE CONSTRAINT zz_big_positive",
], ["ALTER TABLE zz_big DROP CONSTRAINT zz_big_positive", "ALTER TABLE zz_big DROP COLUMN u"],
    "Three changes to the big table.")

ROWS = 1_000_000


def test_plan_grades_each_statement_against_the_live_table(
        corpus_scripts: Path, head_url: URL) -> None:
    versions = corpus_scripts / "versions"
    (versions / "zz_big.py").write_text(BIG)
    command.upgrade(head_url, "zz_big")
    with psycopg.connect(plain(head_url), autocommit=True) as conn:
        conn.execute(b"INSERT INTO zz_big SELECT g FROM generate_series(1, %s) g", (ROWS,))
        conn.execute(b"ANALYZE zz_big")
    (versions / "zz_changes.py").write_text(CHANGES)

    found = command.plan(head_url)
    [rewrite, not_valid, validate] = [e for e in found.effects if e.revision == "zz_changes"]
    assert (rewrite.kind, rewrite.effect, rewrite.lock, rewrite.grade) == (
        "add_column_volatile_default", "rewrite", "AccessExclusiveLock", "danger")
    assert rewrite.table == "zz_big"
    assert abs((rewrite.rows or 0) - ROWS) < ROWS // 100  # the estimate, after ANALYZE
    assert (rewrite.bytes or 0) > 30 * 1024 * 1024  # 1M int rows
    assert (not_valid.effect, not_valid.grade) == ("catalog", "ok")
    assert (validate.effect, validate.lock, validate.grade) == (
        "scan", "ShareUpdateExclusiveLock", "caution")
    assert command.current(head_url) == "zz_big"  # plan changes nothing

    cli = CliRunner().invoke(main, ["plan", "--url", full(head_url)])
    assert cli.exit_code == 0, cli.output
    shown = [line.split(":")[0].split() for line in cli.output.splitlines()
             if line.startswith("  ") and "zz_big" in line]
    assert [words[:5] for words in shown] == [
        ["DANGER", "rewrite", "AccessExclusiveLock", "on", "zz_big,"],
        ["OK", "catalog", "AccessExclusiveLock", "on", "zz_big,"],
        ["CAUTION", "scan", "ShareUpdateExclusiveLock", "on", "zz_big,"]], cli.output
    assert all(words[6] == "rows," and words[8] == "MB" for words in shown), cli.output
    answer: dict[str, Any] = Runner.from_environment({"DATABASE_URL": full(head_url)}).handle(
        {"action": "plan"}, request_id="r")
    graded = [(e["kind"], e["grade"]) for e in answer["effects"] if e["revision"] == "zz_changes"]
    assert graded == [("add_column_volatile_default", "danger"),
                      ("add_check_not_valid", "ok"), ("validate_constraint", "caution")]
