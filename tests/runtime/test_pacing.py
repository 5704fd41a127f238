"""One Alembic run per upgrade, and the deadline checked before every revision of it.

The statement_timeout backstop cannot stop a revision whose time goes to Python, or to
many tiny statements: only the check made before each revision does. These revisions
make the deadline pass partway through the chain.
"""

from __future__ import annotations

import itertools
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
from alquimista_schema.runtime import pacing
from alquimista_schema.runtime.run import Progress, Run
from tests.support.helpers import Invoke, secret_for
from tests.support.revisions import HEAD, SCRATCH, scratch_revision

ROOT = Path(__file__).resolve().parents[2]


# Scratch revisions after the head, with ids no generated revision takes (not numbers).
A, B, C = SCRATCH
DROP_STARTED = "DROP TABLE IF EXISTS started_{rev}"
CHAIN = {
    # A: its time goes to Python, which no statement_timeout can cancel
    A: ("Python work.", "    time.sleep({sleep})\n"
                        f"    op.execute('CREATE TABLE started_{A} (id int)')"),
    # B: many tiny statements, each far under any statement_timeout
    B: ("Many tiny statements.", f"    op.execute('CREATE TABLE started_{B} (id int)')\n"
                                 "    for _ in range(300):\n"
                                 "        op.execute('SELECT 1')"),
    C: ("Last.", f"    op.execute('CREATE TABLE started_{C} (id int)')"),
}


def write_chain(versions: Path, sleep: float) -> None:
    down = HEAD
    for rev, (doc, body) in CHAIN.items():
        (versions / f"{rev}_stepping.py").write_text(
            scratch_revision(rev, down, body.format(sleep=sleep), DROP_STARTED.format(rev=rev),
                             doc, imports=("time",)))
        down = rev


def started(url: URL) -> list[str]:
    with connect(url) as conn:
        return [rev for rev in CHAIN if conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"started_{rev}"}).scalar() is not None]


def test_the_deadline_passing_partway_stops_before_the_next_revision(
        head_url: URL, scratch_scripts: Path) -> None:
    write_chain(scratch_scripts, sleep=3.5)
    seen: list[str] = []
    # 3 s to work: enough to connect (twice: lock and work) and start A, which takes 3.5
    run = command.Run(deadline=time.monotonic() + 1.0 + 3.0, margin=1.0)
    with pytest.raises(DeadlineExceeded) as caught:
        command.upgrade(head_url, "head", run=run, on_applied=lambda a: seen.append(a.revision))
    assert str(caught.value).startswith(f"stopped before revision {B}: too little time left")
    assert f"the database is at {A}" in str(caught.value)
    progress = caught.value.progress
    assert isinstance(progress, command.Result)
    assert (progress.from_revision, progress.to_revision) == (HEAD, A)
    assert [a.revision for a in progress.applied] == [A] == seen
    assert progress.applied[0].duration_ms >= 3500  # timed once committed
    assert started(head_url) == [A]  # B never started
    assert command.current(head_url) == A
    assert [a.revision for a in command.upgrade(head_url, "head").applied] == [B, C]


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
    assert [a.revision for a in result.applied] == [A, B, C]
    assert len(runs) == 1
    assert started(head_url) == [A, B, C]


def test_the_lambda_answers_stopped_before_the_revision(
        invoke: Invoke, head_url: URL, scratch_scripts: Path,
        make_secret: Any) -> None:
    write_chain(scratch_scripts, sleep=5.0)
    arn = make_secret(secret_for(head_url))
    answer = invoke({}, secret=arn, remaining_ms=10_000 + 4_500)  # margin 10 s: 4.5 s to work
    assert answer["error_code"] == "DEADLINE", answer
    assert answer["error"].startswith(f"stopped before revision {B}")
    assert (answer["from_revision"], answer["to_revision"]) == (HEAD, A)
    assert [a["revision"] for a in answer["applied"]] == [A]
    assert started(head_url) == [A]


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
    (scratch_scripts / f"{C}_stepping.py").write_text(
        (scratch_scripts / f"{C}_stepping.py").read_text().replace(
            f"op.execute('CREATE TABLE started_{C} (id int)')",
            f"op.execute('CREATE TABLE started_{C} (id int)')\n    raise ValueError('boom')"))
    with pytest.raises(MigrationFailed, match=f"revision {C} failed and was rolled back: "
                                              "ValueError: boom") as caught:
        command.upgrade(head_url, "head")
    assert caught.value.revision == C
    assert command.current(head_url) == B
    assert started(head_url) == [A, B]


def test_a_statement_that_would_outlive_the_deadline_is_cancelled(
        head_url: URL, scratch_scripts: Path) -> None:
    """The backstop: statement_timeout capped at the time left, inside the revision."""
    (scratch_scripts / f"{A}_backstop.py").write_text(scratch_revision(
        A, HEAD, [f"CREATE TABLE started_{A} (id int)", "SELECT pg_sleep(30)"],
        DROP_STARTED.format(rev=A), "Sleeps."))
    run = command.Run(deadline=time.monotonic() + 1.0 + 3.0, margin=1.0)
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=f"revision {A} was cancelled and rolled back"):
        command.upgrade(head_url, "head", run=run)
    assert time.monotonic() - began < 10
    assert started(head_url) == []
    assert command.current(head_url) == HEAD


def test_the_urls_own_options_never_clash_with_the_runners(empty_url: URL) -> None:
    url = empty_url.update_query_dict({"application_name": "mine", "connect_timeout": "3"})
    assert command.upgrade(url.render_as_string(hide_password=False), "head").to_revision == HEAD


# --- the statement_timeout cap, re-tightened as the time runs out ------------------------


class Clock(Run):
    """A run whose time left is whatever the test says (None: no deadline)."""

    left: float | None = None

    def remaining(self) -> float | None:
        return self.left


def clock(left: float | None, statement_timeout: str | None = None) -> Clock:
    run = Clock(statement_timeout=statement_timeout)
    run.left = left
    return run


STATEMENT_TIMEOUTS = [
    # configured, seconds left, (statement_timeout to use, set by the deadline?)
    (None, None, (None, False)),  # no deadline: the configured value, untouched
    ("5s", None, ("5s", False)),
    (None, 899.0, ("899000ms", True)),  # under the default 15min: the time left
    (None, 900.0, (None, False)),  # exactly the default: it already holds
    (None, 901.0, (None, False)),
    ("5s", 4.5, ("4500ms", True)),
    ("5s", 5.0, ("5s", False)),
    ("5s", 6.0, ("5s", False)),
    ("0", 7200.0, ("7200000ms", True)),  # 0 is no limit to PostgreSQL: the deadline is one
    ("2min", 0.0004, ("1ms", True)),  # never 0, which would mean no limit
    ("2min", -3.0, ("1ms", True)),
]


@pytest.mark.parametrize(("configured", "left", "expected"), STATEMENT_TIMEOUTS)
def test_statement_timeout_is_the_smaller_of_the_setting_and_the_time_left(
        configured: str | None, left: float | None, expected: tuple[str | None, bool]) -> None:
    assert pacing.statement_timeout(clock(left, configured)) == expected


def cap(ms: int) -> str:
    return f"SET statement_timeout = '{ms}ms'"


PACES = {
    # each step: (seconds left before the revision, what the pacer sends first)
    "re-tightened once a statement could overrun by more than SLACK": [
        (100.0, cap(100_000)), (99.5, None), (99.0, None),  # 1.0 s past: still within SLACK
        (98.9, cap(98_900)), (97.0, cap(97_000)), (96.5, None), (10.0, cap(10_000))],
    "not capped while the setting is shorter than the time left": [
        (1000.0, None), (950.0, None), (899.0, cap(899_000)), (898.5, None), (897.0, cap(897_000))],
    "no deadline, no cap": [(None, None), (None, None)],
}


@pytest.mark.parametrize("steps", PACES.values(), ids=list(PACES))
def test_the_cap_follows_the_time_left_between_revisions(
        steps: list[tuple[float | None, str | None]]) -> None:
    run = clock(None)
    pacer = pacing.Pacer(run)
    sent = []
    for left, _ in steps:
        run.left = left
        sent.append(pacer.before(A, Progress()))
        assert pacer.bound is (left is not None and left < 900)  # under the default 15min
    assert sent == [expected for _, expected in steps]


def test_a_revision_the_deadline_stops_is_never_started() -> None:
    for left, at in ((0.0, None), (-5.0, HEAD)):
        with pytest.raises(DeadlineExceeded) as caught:
            pacing.Pacer(clock(left)).before(A, Progress(at, at))
        assert str(caught.value) == (
            f"stopped before revision {A}: too little time left before the deadline; the "
            f"database is at {at or 'base'}. Run again (or raise the function's timeout)")
    assert pacing.Pacer(clock(0.001)).before(A, Progress()) == cap(1)


class DriverError(Exception):
    """A driver error as psycopg2 raises it: its SQLSTATE in ``pgcode``."""

    def __init__(self, pgcode: str | None, text: str) -> None:
        super().__init__(text)
        self.pgcode = pgcode


FAILURES = [
    # SQLSTATE, deadline set the cap?, error, message
    ("57014", True, DeadlineExceeded, f"revision {A} was cancelled and rolled back because the "
     "time left before the deadline ran out; raise the function's timeout and run again"),
    ("57014", False, MigrationFailed, f"revision {A} failed and was rolled back: cancelled by "
     "statement_timeout; raise it, or split the revision"),
    ("55P03", True, MigrationFailed, f"revision {A} failed and was rolled back: could not get "
     "a lock within lock_timeout: another session holds a conflicting lock; retry when "
     "traffic is lower, or raise lock_timeout"),
    ("40P01", False, MigrationFailed, f"revision {A} failed and was rolled back: deadlock "
     "with another session: another session holds a conflicting lock"),
    ("42P01", True, MigrationFailed, f"revision {A} failed and was rolled back: relation "
     '"x" does not exist'),
    (None, False, MigrationFailed, f"revision {A} failed and was rolled back: relation "
     '"x" does not exist'),
]


@pytest.mark.parametrize(("pgcode", "bound", "kind", "message"), FAILURES)
def test_a_revisions_database_error_says_what_it_means(
        pgcode: str | None, bound: bool, kind: type[Exception], message: str) -> None:
    text_ = "relation \"x\" does not exist\nLINE 1: SELECT * FROM x" if pgcode in ("42P01", None) \
        else "canceled"
    error = pacing.failure(DriverError(pgcode, text_), A, deadline_bound=bound)
    assert type(error) is kind
    assert str(error) == message
    if isinstance(error, MigrationFailed):
        assert error.revision == A
        assert error.sqlstate == pgcode  # what the retry reads (runtime/lockwaits.RETRYABLE)


# Records the statement_timeout it runs under, then sleeps.
RECORDING = """
op.execute("INSERT INTO pace_log SELECT '{rev}', setting::bigint FROM pg_settings "
           "WHERE name = 'statement_timeout'")
time.sleep({sleep})
"""


def recording_chain(url: URL, versions: Path, sleep: float) -> None:
    """A to C (after the head), each recording its statement_timeout (ms), then sleeping."""
    with connect(url) as conn:
        conn.execute(text("CREATE TABLE pace_log (revision text, timeout_ms bigint)"))
        conn.commit()
    down = HEAD
    for rev in (A, B, C):
        (versions / f"{rev}_pace.py").write_text(
            scratch_revision(rev, down, RECORDING.format(rev=rev, sleep=sleep),
                             doc="Records the statement_timeout it runs under.",
                             imports=("time",)))
        down = rev


def recorded(url: URL) -> list[int]:
    with connect(url) as conn:
        return list(conn.execute(text("SELECT timeout_ms FROM pace_log ORDER BY revision"))
                    .scalars())


def assert_retightened(timeouts: list[int], budget_ms: int, sleep_ms: int) -> None:
    """Each revision ran under the time left when it started: below the budget, and
    shorter by at least the time the revision before it took."""
    assert len(timeouts) == 3
    assert all(0 < t <= budget_ms for t in timeouts), (timeouts, budget_ms)
    assert timeouts[0] > budget_ms - 15_000, timeouts  # the time left, not some floor
    assert [a - b >= sleep_ms for a, b in itertools.pairwise(timeouts)] == \
        [True, True], timeouts


def test_the_lambda_caps_each_revision_at_the_time_left(
        invoke: Invoke, head_url: URL, scratch_scripts: Path, make_secret: Any) -> None:
    recording_chain(head_url, scratch_scripts, sleep=1.5)
    answer = invoke({}, secret=make_secret(secret_for(head_url)), remaining_ms=100_000)
    assert [a["revision"] for a in answer["applied"]] == [A, B, C], answer
    assert_retightened(recorded(head_url), budget_ms=100_000 - 10_000, sleep_ms=1_500)


def test_the_lambda_keeps_the_setting_when_it_is_shorter_than_the_time_left(
        invoke: Invoke, head_url: URL, scratch_scripts: Path, make_secret: Any) -> None:
    recording_chain(head_url, scratch_scripts, sleep=0)
    answer = invoke({}, secret=make_secret(secret_for(head_url)), remaining_ms=20 * 60_000)
    assert answer["status"] == "success", answer
    assert recorded(head_url) == [15 * 60_000] * 3  # the default 15min, never raised


def test_a_run_with_a_deadline_caps_each_revision_at_the_time_left(
        head_url: URL, scratch_scripts: Path) -> None:
    """The library's door (what the Lambda calls): the same rule with a deadline of its own."""
    recording_chain(head_url, scratch_scripts, sleep=1.5)
    run = command.Run(deadline=time.monotonic() + 61.0, margin=1.0, statement_timeout="2min")
    assert [a.revision for a in command.upgrade(head_url, run=run).applied] == \
        [A, B, C]
    assert_retightened(recorded(head_url), budget_ms=60_000, sleep_ms=1_500)


def test_an_error_without_a_sqlstate_is_a_failed_revision() -> None:
    """Not every error under a revision comes from the server (no pgcode at all)."""
    error = pacing.failure(RuntimeError("the driver gave up"), A, deadline_bound=True)
    assert type(error) is MigrationFailed
    assert str(error) == f"revision {A} failed and was rolled back: the driver gave up"
