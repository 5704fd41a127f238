"""Checksums of applied revisions: recorded when applied, adopted or stamped; verified."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import ChecksumMismatch
from alquimista_schema.runtime import audit, ledger, locking
from alquimista_schema.runtime.run import Run
from alquimista_schema.script import directory
from tests.support.helpers import Invoke, secret_for
from tests.support.revisions import COUNT, EXTRA, EXTRA_COLUMN, HEAD, REVISIONS, SCRATCH, upto

CHAIN = REVISIONS


def rows(url: URL) -> dict[str, tuple[str, str]]:
    with connect(url) as conn:
        return {r.revision: (r.checksum, r.how) for r in conn.execute(
            text(f"SELECT revision, checksum, how FROM {ledger.TABLE}"))}


def carried() -> dict[str, str]:
    return dict(ledger.carried(directory.script_directory()))


def test_an_upgrade_records_each_revision_and_a_downgrade_removes_it(empty_url: URL) -> None:
    command.upgrade(empty_url, "head")
    assert rows(empty_url) == {rev: (carried()[rev], "applied") for rev in CHAIN}
    assert [c.status for c in command.verify(empty_url).checks] == ["ok"] * COUNT
    command.downgrade(empty_url, "019")
    assert sorted(rows(empty_url)) == sorted(upto("019"))


@pytest.fixture
def at_extra(head_url: URL, scratch_scripts: Path) -> Path:
    path = scratch_scripts / f"{EXTRA}_extra.py"
    path.write_text(EXTRA_COLUMN)
    command.upgrade(head_url, "head")
    return path


def test_an_edited_statement_is_named_a_reworded_docstring_is_not(head_url: URL,
                                                                   at_extra: Path) -> None:
    recorded = rows(head_url)[EXTRA][0]
    at_extra.write_text(EXTRA_COLUMN.replace('"""An extra column."""',
                                               '"""Reworded, no code."""'))
    assert command.verify(head_url).checks[-1].status == "ok"
    at_extra.write_text(EXTRA_COLUMN.replace("extra text", "extra varchar(10)"))
    with pytest.raises(ChecksumMismatch) as caught:
        command.verify(head_url)
    assert caught.value.code == "CHECKSUM_MISMATCH"
    [line] = caught.value.mismatches
    assert line.startswith(f"{EXTRA}: edited after it was applied: recorded {recorded}, the "
                           f"file now {carried()[EXTRA]} (recorded ")
    assert line.endswith(", applied)")
    cli = CliRunner().invoke(main, ["verify", "--url",
                                    head_url.render_as_string(hide_password=False)])
    assert cli.exit_code == 1
    assert cli.stderr.splitlines()[1].startswith(f"  - {EXTRA}: edited after it was applied")


def test_upgrade_refuses_in_prod_warns_elsewhere_and_accepts_when_asked(
        head_url: URL, at_extra: Path) -> None:
    at_extra.write_text(EXTRA_COLUMN.replace("extra text", "extra varchar(10)"))
    with pytest.raises(ChecksumMismatch, match="upgrade refused in prod"):
        command.upgrade(head_url, "head", run=Run(environment="prod"))
    elsewhere = command.upgrade(head_url, "head")
    assert [w.split(": recorded")[0] for w in elsewhere.warnings] == [
        f"checksum: {EXTRA}: edited after it was applied"]
    accepted = command.upgrade(head_url, "head", run=Run(environment="prod",
                                                        request_id="accept-1"),
                               accept_checksums=True)
    assert accepted.warnings == [f"accepted the new checksums of {EXTRA}"]
    assert rows(head_url)[EXTRA] == (carried()[EXTRA], "accepted")
    command.verify(head_url)
    with connect(head_url) as conn:
        [row] = [r for r in audit.entries(conn) if r["request_id"] == "accept-1"]
    assert (row["outcome"], row["action"]) == ("success", "upgrade")


def test_a_database_from_before_checksums_reports_none_recorded(head_url: URL) -> None:
    with connect(head_url) as conn:
        conn.execute(text(f"DROP TABLE {ledger.TABLE}"))
        conn.commit()
    found = command.verify(head_url)
    assert [c.status for c in found.checks] == ["unrecorded"] * COUNT
    assert found.checks[0].describe() == ("lead_ingestion: no checksum recorded (applied "
                                          "before checksums were kept)")


def test_stamp_and_adopt_record_what_they_mark_applied(empty_url: URL,
                                                        legacy_url: URL) -> None:
    command.stamp(empty_url, "018")
    assert {r: how for r, (_, how) in rows(empty_url).items()} == {
        "lead_ingestion": "stamped", "017": "stamped", "018": "stamped"}
    command.stamp(empty_url, "017")
    assert sorted(rows(empty_url)) == ["017", "lead_ingestion"]
    command.adopt(legacy_url)
    assert {r: how for r, (_, how) in rows(legacy_url).items()} == {
        "lead_ingestion": "adopted", "017": "adopted"}
    command.verify(legacy_url)


def test_a_refused_upgrade_in_prod_changed_nothing(head_url: URL, at_extra: Path,
                                                   scratch_scripts: Path) -> None:
    """Pending revisions too: the mismatch is checked before anything is applied."""
    at_extra.write_text(EXTRA_COLUMN.replace("extra text", "extra varchar(10)"))
    more = SCRATCH[1]
    (scratch_scripts / f"{more}_more.py").write_text(
        EXTRA_COLUMN.replace(f'"{EXTRA}"', f'"{more}"').replace(f'"{HEAD}"', f'"{EXTRA}"')
        .replace("extra", "more"))
    with pytest.raises(ChecksumMismatch):
        command.upgrade(head_url, "head", run=Run(environment="prod"))
    assert command.current(head_url) == EXTRA
    warned = command.upgrade(head_url, "head")  # elsewhere: a warning, and it runs
    assert [a.revision for a in warned.applied] == [more]
    assert any(w.startswith(f"checksum: {EXTRA}: edited after it was applied")
               for w in warned.warnings)


# --- the Lambda's verify, and its scheduled checks ------------------------------------


def test_the_lambda_verifies_and_accepts(invoke: Invoke, head_url: URL, at_extra: Path,
                                         make_secret: Callable[..., str]) -> None:
    clean = invoke({"action": "verify"}, secret=make_secret(secret_for(head_url)))
    assert (clean["status"], clean["verified"]) == ("success", True), clean
    assert [r["status"] for r in clean["revisions"]] == ["ok"] * (COUNT + 1)
    at_extra.write_text(EXTRA_COLUMN.replace("extra text", "extra varchar(10)"))
    edited = invoke({"action": "verify"})
    assert edited["error_code"] == "CHECKSUM_MISMATCH"
    [line] = edited["mismatches"]
    assert line.startswith(f"{EXTRA}: edited after it was applied")
    refused = invoke({"action": "upgrade", "accept_checksums": "true"})
    assert refused["error_code"] == "BAD_EVENT"  # booleans are JSON booleans
    accepted = invoke({"action": "upgrade", "accept_checksums": True},
                      env={"ENVIRONMENT": "prod", "SNAPSHOT_BEFORE_UPGRADE": "false"})
    assert accepted["warnings"] == [f"accepted the new checksums of {EXTRA}"], accepted
    assert invoke({"action": "verify"})["status"] == "success"


def test_drift_and_verify_skip_while_a_migration_holds_the_lock(
        invoke: Invoke, head_url: URL, make_secret: Callable[..., str]) -> None:
    with connect(head_url) as holder:
        assert locking.try_lock(holder.connection.driver_connection)
        for action in ("drift", "verify"):
            answer = invoke({"action": action}, secret=make_secret(secret_for(head_url)))
            assert (answer["status"], answer["skipped"]) == ("noop", True), answer
            assert answer["message"].startswith(f"{action} skipped: a migration holds the "
                                                "lock (pid ")
        locking.unlock(holder.connection.driver_connection)
    assert invoke({"action": "drift"})["drift"] is False


def test_drift_found_is_logged_for_the_alarm(invoke: Invoke, head_url: URL,
                                             make_secret: Callable[..., str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with connect(head_url) as conn:
        conn.execute(text("ALTER TABLE dry_run_log ADD COLUMN by_hand text"))
        conn.commit()
    capsys.readouterr()
    answer = invoke({"action": "drift"}, secret=make_secret(secret_for(head_url)))
    assert answer["drift"] is True
    steps = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    assert {"step": "drift.found", "differences": 1}.items() <= next(
        s for s in steps if s["step"] == "drift.found").items()
