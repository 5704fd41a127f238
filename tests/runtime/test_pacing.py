"""One Alembic run per upgrade, and the deadline checked before every revision of it.

The statement_timeout backstop cannot stop a revision whose time goes to Python, or to
many tiny statements: only the check made before each revision does. These revisions
make the deadline pass partway through the chain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DeadlineExceeded, MigrationFailed
from tests.support.helpers import Invoke, secret_for

ROOT = Path(__file__).resolve().parents[2]

REVISION = '''"""{doc}"""
import time

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS started_{rev}")
'''

CHAIN = {
    # 022: its time goes to Python, which no statement_timeout can cancel
    "022": ("Python work.", "    time.sleep({sleep})\n"
                            "    op.execute('CREATE TABLE started_022 (id int)')"),
    # 023: many tiny statements, each far under any statement_timeout
    "023": ("Many tiny statements.", "    op.execute('CREATE TABLE started_023 (id int)')\n"
                                     "    for _ in range(300):\n"
                                     "        op.execute('SELECT 1')"),
    "024": ("Last.", "    op.execute('CREATE TABLE started_024 (id int)')"),
}


def write_chain(versions: Path, sleep: float) -> None:
    down = "021"
    for rev, (doc, body) in CHAIN.items():
        (versions / f"{rev}_stepping.py").write_text(
            REVISION.format(doc=doc, rev=rev, down=down, body=body.format(sleep=sleep)))
        down = rev


def started(url: URL) -> list[str]:
    with connect(url) as conn:
        return [rev for rev in CHAIN if conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"started_{rev}"}).scalar() is not None]


def test_the_deadline_passing_partway_stops_before_the_next_revision(
        head_url: URL, scratch_scripts: Path) -> None:
    write_chain(scratch_scripts, sleep=3.5)
    seen: list[str] = []
    # 3 s to work: enough to connect (twice: lock and work) and start 022, which takes 3.5
    run = command.Run(deadline=time.monotonic() + 1.0 + 3.0, margin=1.0)
    with pytest.raises(DeadlineExceeded) as caught:
        command.upgrade(head_url, "head", run=run, on_applied=lambda a: seen.append(a.revision))
    assert str(caught.value).startswith("stopped before revision 023: too little time left")
    assert "the database is at 022" in str(caught.value)
    progress = caught.value.progress
    assert isinstance(progress, command.Result)
    assert (progress.from_revision, progress.to_revision) == ("021", "022")
    assert [a.revision for a in progress.applied] == ["022"] == seen
    assert progress.applied[0].duration_ms >= 3500  # timed once committed
    assert started(head_url) == ["022"]  # 023 never started
    assert command.current(head_url) == "022"
    assert [a.revision for a in command.upgrade(head_url, "head").applied] == ["023", "024"]


def test_with_time_enough_every_revision_runs_in_one_alembic_run(
        head_url: URL, scratch_scripts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """env.py runs once for the whole chain (it ran once per revision before)."""
    from alquimista_schema.runtime import environment

    write_chain(scratch_scripts, sleep=0)
    runs: list[int] = []
    original = environment.run

    def counting(context: Any) -> None:
        runs.append(1)
        original(context)

    monkeypatch.setattr(environment, "run", counting)
    run = command.Run(deadline=time.monotonic() + 300, margin=10)
    result = command.upgrade(head_url, "head", run=run)
    assert [a.revision for a in result.applied] == ["022", "023", "024"]
    assert len(runs) == 1
    assert started(head_url) == ["022", "023", "024"]


def test_the_lambda_answers_stopped_before_the_revision(
        invoke: Invoke, head_url: URL, scratch_scripts: Path,
        make_secret: Any) -> None:
    write_chain(scratch_scripts, sleep=5.0)
    arn = make_secret(secret_for(head_url))
    answer = invoke({}, secret=arn, remaining_ms=10_000 + 4_500)  # margin 10 s: 4.5 s to work
    assert answer["error_code"] == "DEADLINE", answer
    assert answer["error"].startswith("stopped before revision 023")
    assert (answer["from_revision"], answer["to_revision"]) == ("021", "022")
    assert [a["revision"] for a in answer["applied"]] == ["022"]
    assert started(head_url) == ["022"]


def test_a_failing_revision_under_plain_alembic_keeps_the_ones_before_it(
        empty_url: URL) -> None:
    """Transaction per migration, under the alembic CLI too: 018 stays, 019 rolls back."""
    command.upgrade(empty_url, "017")
    with connect(empty_url) as conn:
        conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
                          "VALUES (gen_random_uuid(), 'sms', 'breaks 019')"))
        conn.commit()
    env = {**os.environ, "DATABASE_URL": empty_url.render_as_string(hide_password=False)}
    done = subprocess.run([sys.executable, "-c", "from alembic.config import main; main()",
                           "upgrade", "head"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "revision 019 failed and was rolled back" in done.stdout + done.stderr
    assert command.current(empty_url) == "018"


def test_a_failing_revision_is_named_and_the_ones_before_it_stay(
        head_url: URL, scratch_scripts: Path) -> None:
    write_chain(scratch_scripts, sleep=0)
    (scratch_scripts / "024_stepping.py").write_text(
        (scratch_scripts / "024_stepping.py").read_text().replace(
            "op.execute('CREATE TABLE started_024 (id int)')",
            "op.execute('CREATE TABLE started_024 (id int)')\n    raise ValueError('boom')"))
    with pytest.raises(MigrationFailed, match="revision 024 failed and was rolled back: "
                                              "ValueError: boom") as caught:
        command.upgrade(head_url, "head")
    assert caught.value.revision == "024"
    assert command.current(head_url) == "023"
    assert started(head_url) == ["022", "023"]


def test_a_statement_that_would_outlive_the_deadline_is_cancelled(
        head_url: URL, scratch_scripts: Path) -> None:
    """The backstop: statement_timeout capped at the time left, inside the revision."""
    (scratch_scripts / "022_backstop.py").write_text(REVISION.format(
        doc="Sleeps.", rev="022", down="021",
        body="    op.execute('CREATE TABLE started_022 (id int)')\n"
             "    op.execute('SELECT pg_sleep(30)')"))
    run = command.Run(deadline=time.monotonic() + 1.0 + 3.0, margin=1.0)
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="revision 022 was cancelled and rolled back"):
        command.upgrade(head_url, "head", run=run)
    assert time.monotonic() - began < 10
    assert started(head_url) == []
    assert command.current(head_url) == "021"


def test_the_urls_own_options_never_clash_with_the_runners(empty_url: URL) -> None:
    url = empty_url.update_query_dict({"application_name": "mine", "connect_timeout": "3"})
    assert command.upgrade(url.render_as_string(hide_password=False), "head").to_revision == "021"
