"""The Lambda runner end to end: moto's Secrets Manager over HTTP, a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import lambda_entry.handler as entry
from alquimista_schema import command
from alquimista_schema.aws.runner import Runner
from alquimista_schema.connect import secretsmanager
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit, locking
from tests.support.helpers import (
    LEAK_WATCH,
    MIGRATOR_PASSWORD,
    ROOT,
    TLS,
    Invoke,
    secret_for,
)
from tests.support.revisions import HEAD, REVISIONS, after


@pytest.fixture
def db(migrator_url: URL, make_secret: Callable[..., str]) -> tuple[URL, str]:
    """A fresh empty database and a secret (RDS format) for its migration role."""
    return migrator_url, make_secret(secret_for(migrator_url))


CHAIN = REVISIONS
COMMON = {"status", "action", "from_revision", "to_revision", "applied", "duration_ms",
          "request_id"}


def test_default_event_upgrades_to_head(invoke: Invoke, db: tuple[URL, str]) -> None:
    url, arn = db
    answer = invoke({}, secret=arn)
    assert set(answer) >= COMMON
    assert answer["status"] == "success", answer
    assert (answer["action"], answer["from_revision"], answer["to_revision"]) == \
        ("upgrade", None, HEAD)
    assert [a["revision"] for a in answer["applied"]] == CHAIN
    assert all(set(a) == {"revision", "description", "duration_ms"} for a in answer["applied"])
    again = invoke({"action": "upgrade", "target": "head"})
    assert again["status"] == "noop"
    assert again["applied"] == []
    assert command.current(url) == HEAD


def test_legacy_run_migration_017_then_all(invoke: Invoke, db: tuple[URL, str]) -> None:
    _url, arn = db
    first = invoke({"action": "run-migration", "target": "017"}, secret=arn)
    assert first["status"] == "success"
    assert first["migration"] == "017"
    assert first["message"] == "Migration 017 executed successfully"
    assert [a["revision"] for a in first["applied"]] == ["lead_ingestion", "017"]
    repeat = invoke({"action": "run-migration", "target": "017"})
    assert repeat["status"] == "noop"
    assert "already applied" in repeat["message"]
    rest = invoke({"action": "run-migration", "target": "all"})
    assert [a["revision"] for a in rest["applied"]] == after("017")
    listed = invoke({"action": "list-migrations"})
    assert listed["status"] == "success"
    assert listed["executedMigrations"] == CHAIN
    assert [m["revision"] for m in listed["migrations"]] == listed["executedMigrations"]
    assert isinstance(listed["message"], str)


def test_list_migrations_on_a_partly_migrated_database(invoke: Invoke,
                                                       db: tuple[URL, str]) -> None:
    url, arn = db
    command.upgrade(url, "017")
    listed = invoke({"action": "list-migrations"}, secret=arn)
    assert listed["executedMigrations"] == ["lead_ingestion", "017"]
    assert [m["applied"] for m in listed["migrations"]] == \
        [True, True] + [False] * len(after("017"))


def test_current_history_plan(invoke: Invoke, db: tuple[URL, str]) -> None:
    url, arn = db
    command.upgrade(url, "017")
    current = invoke({"action": "current"}, secret=arn)
    assert (current["revision"], current["is_head"]) == ("017", False)
    history = invoke({"action": "history"})
    assert [r["revision"] for r in history["revisions"]][-1] == HEAD
    plan = invoke({"action": "plan", "target": "head"})
    assert plan["status"] == "success"
    assert [p["revision"] for p in plan["pending"]] == after("017")
    assert "VALIDATE CONSTRAINT ck_leads_status" in plan["sql"]
    assert (plan["from_revision"], plan["to_revision"]) == ("017", HEAD)
    assert command.current(url) == "017"  # nothing applied


def test_drift(invoke: Invoke, db: tuple[URL, str]) -> None:
    url, arn = db
    command.upgrade(url, "head")
    clean = invoke({"action": "drift"}, secret=arn)
    assert (clean["status"], clean["drift"], clean["differences"]) == ("success", False, [])
    with connect(url) as conn:
        conn.execute(text("ALTER TABLE dry_run_log ADD COLUMN extra text"))
        conn.commit()
    drifted = invoke({"action": "drift"})
    assert drifted["drift"] is True
    assert drifted["differences"] == ["drop column dry_run_log.extra (TEXT)"]
    assert command.current(url) == HEAD


def test_downgrade_needs_the_flag_and_in_prod_a_confirmation(invoke: Invoke,
                                                             db: tuple[URL, str]) -> None:
    url, arn = db
    command.upgrade(url, "head")
    refused = invoke({"action": "downgrade", "target": "017"}, secret=arn)
    assert refused["error_code"] == "DOWNGRADE_REFUSED"
    assert "allow_downgrade" in refused["error"]
    prod = invoke({"action": "downgrade", "target": "017", "allow_downgrade": True},
                  env={"ENVIRONMENT": "prod"})
    assert prod["error_code"] == "DOWNGRADE_REFUSED"
    assert '"confirm": "017"' in prod["error"]
    assert command.current(url) == HEAD
    done = invoke({"action": "downgrade", "target": "017", "allow_downgrade": True,
                   "confirm": "017"})
    assert done["status"] == "success"
    assert [a["revision"] for a in done["applied"]] == after("017")[::-1]
    assert command.current(url) == "017"


BAD_EVENTS: list[Any] = [
    "upgrade", 17, ["upgrade"], {"action": "nope"}, {"action": 5}, {"target": 17},
    {"target": "head; DROP TABLE leads"}, {"target": "x" * 500}, {"target": "ção"},
    {"target": "' OR 1=1 --"}, {"foo": "bar"}, {"action": "current", "target": "head"},
    {"action": "downgrade"}, {"action": "run-migration"},
    {"action": "downgrade", "target": "017", "allow_downgrade": "yes"},
    {"action": "upgrade", "target": {"nested": ["x"]}}, {"blob": "y" * 10_000},
    {"action": "downgrade", "target": "base", "allow_downgrade": True, "confirm": 1},
]


@pytest.mark.parametrize("event", BAD_EVENTS, ids=range(len(BAD_EVENTS)))
def test_malformed_events_are_refused_and_touch_nothing(invoke: Invoke, db: tuple[URL, str],
                                                        event: Any) -> None:
    url, arn = db
    answer = invoke(event, secret=arn)
    assert answer["status"] == "error"
    assert answer["error_code"] == "BAD_EVENT"
    assert isinstance(answer["error"], str)
    assert set(answer) >= COMMON
    assert command.current(url) is None
    with connect(url) as conn:
        assert conn.execute(text("SELECT to_regclass(:t)"), {"t": audit.TABLE}).scalar() is None


def test_unknown_revision(invoke: Invoke, db: tuple[URL, str]) -> None:
    answer = invoke({"target": "999"}, secret=db[1])
    assert answer["error_code"] == "UNKNOWN_REVISION"
    assert f"Known revisions: {', '.join(REVISIONS)}" in answer["error"]


def test_legacy_error_answer_keeps_the_old_keys(invoke: Invoke, db: tuple[URL, str]) -> None:
    answer = invoke({"action": "run-migration", "target": "999"}, secret=db[1])
    assert answer["status"] == "error"
    assert answer["message"] == "Migration execution failed"
    assert isinstance(answer["error"], str)
    assert answer["error_code"] == "UNKNOWN_REVISION"


def test_failed_revision_is_rolled_back_and_audited(invoke: Invoke, db: tuple[URL, str]) -> None:
    url, arn = db
    command.upgrade(url, "017")
    with connect(url) as conn:
        conn.execute(text("INSERT INTO dry_run_log (tenant_id, canal_decidido, motivo_decisao) "
                          "VALUES (gen_random_uuid(), 'pombo', 'x')"))
        conn.commit()
    answer = invoke({}, secret=arn)
    assert answer["error_code"] == "MIGRATION_FAILED"
    assert "revision 019 failed and was rolled back" in answer["error"]
    assert (answer["from_revision"], answer["to_revision"]) == ("017", "018")
    assert [a["revision"] for a in answer["applied"]] == ["018"]
    assert command.current(url) == "018"
    with connect(url) as conn:
        row = audit.entries(conn)[0]  # the newest
    assert (row["outcome"], row["error_code"]) == ("error", "MIGRATION_FAILED")
    assert (row["from_revision"], row["to_revision"]) == ("017", "018")
    assert [a["revision"] for a in row["applied"]] == ["018"]
    assert row["request_id"] == answer["request_id"]


def test_audit_rows_for_changes_only(invoke: Invoke, db: tuple[URL, str]) -> None:
    url, arn = db
    done = invoke({}, secret=arn)
    assert done["status"] == "success"
    invoke({})  # noop: no row
    invoke({"action": "current"})  # reads: no row
    with connect(url) as conn:
        rows = audit.entries(conn)
    assert len(rows) == 1
    [row] = rows
    assert row["request_id"] == done["request_id"]
    assert row["outcome"] == "success"
    assert row["actor"] == "lambda"
    assert row["secret_version"]
    assert [a["revision"] for a in row["applied"]] == CHAIN
    command.check(url)  # the audit table is invisible to check


def test_wrong_password_is_auth_failed_after_one_refetch(invoke: Invoke, migrator_url: URL,
                                                         make_secret: Callable[..., str],
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    arn = make_secret(secret_for(migrator_url, password="not-the-" + "password"))
    answer = invoke({}, secret=arn)
    assert answer["error_code"] == "AUTH_FAILED"
    assert "refused the credentials of user 'migrator'" in answer["error"]
    assert entry._runner is not None
    assert entry._runner.secrets is not None
    assert entry._runner.secrets.fetches == 2  # fetched again once, in case of rotation
    assert '"step": "secret.refetch"' in capsys.readouterr().out


def test_rotated_password_is_picked_up(invoke: Invoke, aws: Any, migrator_url: URL,
                                       make_secret: Callable[..., str]) -> None:
    arn = make_secret(secret_for(migrator_url, password="old-" + "password"))
    assert invoke({"action": "current"}, secret=arn)["error_code"] == "AUTH_FAILED"
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps(secret_for(migrator_url)))
    answer = invoke({"action": "current"})
    assert answer["status"] == "success"


def test_secret_is_fetched_once_per_warm_container(invoke: Invoke, db: tuple[URL, str]) -> None:
    invoke({"action": "current"}, secret=db[1])
    invoke({"action": "current"})
    invoke({})
    assert entry._runner is not None
    assert entry._runner.secrets is not None
    assert entry._runner.secrets.fetches == 1


# Every broken secret carries the watched password, so a message that prints the
# secret fails the suite's leak check (a bad-port message once did, unnoticed).
W = MIGRATOR_PASSWORD


@pytest.mark.parametrize(("value", "expected"), [
    ("not json at all " + W, "is not JSON"),
    (json.dumps(["a", "list", W]), "is not a JSON object"),
    (json.dumps({"username": "migrator", "host": "h", "dbname": W}), "lacks password"),
    (json.dumps({"username": "u", "password": W, "engine": "mysql", "host": "h",
                 "dbname": "d"}), "engine 'mysql'"),
    (json.dumps({"username": "u", "password": W, "host": "h", "dbname": "d", "port": "54x"}),
     "has a port that is not a number"),
    (json.dumps({"username": "u", "password": W, "dbname": "d"}), "lacks host (or DB_HOST)"),
    (json.dumps({"username": "u", "password": W + "\u0000", "host": "h", "dbname": "d"}),
     "has a NUL character in its password"),
    (json.dumps({"username": "u", "password": W, "host": "h", "dbname": "d",
                 "engine": ["postgres", W]}), "not PostgreSQL"),
])
def test_broken_secrets(invoke: Invoke, make_secret: Callable[..., str], value: str,
                        expected: str) -> None:
    answer = invoke({}, secret=make_secret(value))
    assert answer["error_code"] == "SECRET_UNAVAILABLE"
    assert expected in answer["error"]


def test_unknown_secret(invoke: Invoke) -> None:
    answer = invoke({}, secret="arn:aws:secretsmanager:sa-east-1:123456789012:secret:nope")
    assert answer["error_code"] == "SECRET_UNAVAILABLE"
    assert "no such secret" in answer["error"]


def test_missing_secret_setting(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    answer = invoke({})
    assert answer["status"] == "error"
    assert "DB_SECRET_ARN is not set" in answer["error"]


def test_silent_secrets_endpoint_fails_fast(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                            blackhole: tuple[str, int]) -> None:
    monkeypatch.setattr(secretsmanager, "READ_TIMEOUT", 1)
    monkeypatch.setattr(secretsmanager, "CONNECT_TIMEOUT", 1)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://{blackhole[0]}:{blackhole[1]}")
    began = time.monotonic()
    answer = invoke({}, secret="alquimista/any")
    assert time.monotonic() - began < 15
    assert answer["error_code"] == "SECRET_UNAVAILABLE"
    assert "Secrets Manager VPC endpoint" in answer["error"]


def test_silent_database_host_ends_in_db_unreachable_within_budget(
        invoke: Invoke, migrator_url: URL, make_secret: Callable[..., str],
        blackhole: tuple[str, int]) -> None:
    host, port = blackhole
    arn = make_secret(secret_for(migrator_url, host=host, port=port))
    began = time.monotonic()
    answer = invoke({}, secret=arn, env={"CONNECT_TIMEOUT_SECONDS": "2",
                                         "CONNECT_BUDGET_SECONDS": "6"})
    elapsed = time.monotonic() - began
    assert answer["error_code"] == "DB_UNREACHABLE"
    assert f"{host}:{port}" in answer["error"]
    assert "attempts" in answer["error"]
    assert "security group" in answer["error"]
    assert 4 <= elapsed < 14


def test_lock_held_by_another_session_times_out_naming_it(invoke: Invoke,
                                                           db: tuple[URL, str]) -> None:
    url, arn = db
    with connect(url, application_name="holder-under-test") as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locking.LOCK_KEY})
        holder.commit()
        pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        holder.commit()
        answer = invoke({}, secret=arn, env={"LOCK_WAIT_SECONDS": "1"})
    assert answer["error_code"] == "LOCK_TIMEOUT"
    assert f"pid {pid}" in answer["error"]
    assert "holder-under-test" in answer["error"]
    assert command.current(url) is None


def test_too_little_time_left_is_deadline_and_changes_nothing(invoke: Invoke,
                                                               db: tuple[URL, str]) -> None:
    url, arn = db
    answer = invoke({}, secret=arn, remaining_ms=5_000)  # less than the 10 s margin
    assert answer["error_code"] == "DEADLINE", answer
    assert command.current(url) is None


def test_a_statement_running_into_the_deadline_is_cancelled(invoke: Invoke,
                                                            db: tuple[URL, str]) -> None:
    """statement_timeout shrinks to the time left, so PostgreSQL cancels before Lambda kills."""
    url, arn = db
    command.upgrade(url, "017")
    with connect(url) as holder:
        holder.execute(text("LOCK TABLE dry_run_log IN ACCESS SHARE MODE"))
        began = time.monotonic()
        answer = invoke({}, secret=arn, remaining_ms=13_000)  # 3 s before the margin
        elapsed = time.monotonic() - began
        holder.rollback()
    assert answer["error_code"] == "DEADLINE", answer
    assert "revision 018 was cancelled and rolled back" in answer["error"]
    assert elapsed < 8
    assert command.current(url) == "017"


def test_application_name_identifies_the_request(invoke: Invoke, db: tuple[URL, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection the run opens (fast path, lock, migrations) names the request."""
    import psycopg2

    seen: list[str | None] = []
    original = psycopg2.connect

    def spy(*args: Any, **kwargs: Any) -> Any:  # SQLAlchemy and the fast path both call it
        seen.append(kwargs.get("application_name"))
        return original(*args, **kwargs)

    monkeypatch.setattr(psycopg2, "connect", spy)
    answer = invoke({}, secret=db[1])
    assert answer["status"] == "success", answer
    assert len(seen) >= 2  # at least the lock's and the migrations' connections
    assert set(seen) == {f"alquimista-schema/{answer['request_id']}"}


def test_logs_are_json_lines_with_the_request_id(invoke: Invoke, db: tuple[URL, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    answer = invoke({}, secret=db[1])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    steps = [line["step"] for line in lines]
    assert steps[0] == "event.accepted"
    assert steps.count("revision.applied") == len(CHAIN)
    assert steps[-1] == "event.answered"
    assert {line["request_id"] for line in lines} == {answer["request_id"]}
    ready = next(line for line in lines if line["step"] == "secret.ready")
    assert ready["database"].startswith("postgresql+psycopg2://migrator:***@localhost:")


def test_tls_verify_full_against_the_wrong_ca_is_refused(invoke: Invoke, db: tuple[URL, str],
                                                         tls: TLS) -> None:
    answer = invoke({"action": "current"}, secret=db[1], env={"DB_SSLROOTCERT": str(tls.other_ca)})
    assert answer["error_code"] == "DB_UNREACHABLE"
    assert "TLS" in answer["error"]
    assert "certificate verify failed" in answer["error"]


def test_a_server_without_tls_is_refused(invoke: Invoke,
                                         make_secret: Callable[..., str]) -> None:
    """A real PostgreSQL with TLS off: never a plaintext connection, with or without a CA."""
    import shutil
    import tempfile
    from pathlib import Path

    from alquimista_schema.connect.local import DevDatabase

    root = Path(tempfile.mkdtemp(prefix="alq-plaintext-"))
    server = DevDatabase(root, dbname="postgres")
    try:
        url = server.start()
        LEAK_WATCH.add(url.password or "")
        arn = make_secret(secret_for(url))
        for env in ({}, {"DB_SSLROOTCERT": ""}):  # verify-full, then require
            answer = invoke({"action": "current"}, secret=arn, env=env)
            assert answer["error_code"] == "DB_UNREACHABLE", answer
            assert "server does not support SSL" in answer["error"]
            assert "the server must offer TLS" in answer["error"]
    finally:
        server.remove()
        shutil.rmtree(root, ignore_errors=True)


# --- AWS's Parameters and Secrets extension (a stand-in forwarding to moto) -------------

def test_the_extension_serves_the_secret_when_configured(
        invoke: Invoke, db: tuple[URL, str], moto_endpoint: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support import extension_standin

    _, arn = db
    with extension_standin.serve(moto_endpoint, token="session-token-1") as ext:
        env = {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(ext.port),
               "AWS_SESSION_TOKEN": "session-token-1"}
        answer = invoke({}, secret=arn, env=env)
        assert answer["status"] == "success", answer
        assert invoke({"action": "current"})["revision"] == HEAD
    assert ext.requests == [arn]  # once per warm container, with the session token
    assert '"via": "extension"' in capsys.readouterr().out
    assert entry._runner is not None
    assert entry._runner.secrets is not None
    assert entry._runner.secrets.cached is not None
    assert entry._runner.secrets.cached.source == "extension"


def test_an_extension_that_does_not_answer_falls_back_to_secrets_manager(
        invoke: Invoke, db: tuple[URL, str], blackhole: tuple[str, int]) -> None:
    import socket

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    for port in (free, blackhole[1]):  # refused, then silent
        answer = invoke({"action": "current"}, secret=db[1],
                        env={"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(port)})
        assert answer["status"] == "success", answer
        assert entry._runner is not None
        assert entry._runner.secrets is not None
        assert entry._runner.secrets.cached is not None
        assert entry._runner.secrets.cached.source == "secretsmanager"


def test_after_refused_credentials_the_secret_comes_from_secrets_manager(
        invoke: Invoke, migrator_url: URL, make_secret: Callable[..., str],
        moto_endpoint: str) -> None:
    """The extension caches for minutes: after a rotation its copy is the old password."""
    from tests.support import extension_standin

    arn = make_secret(secret_for(migrator_url, password="before-" + "rotation"))
    with extension_standin.serve(moto_endpoint, token="t") as ext:
        answer = invoke({"action": "current"}, secret=arn, env={
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(ext.port), "AWS_SESSION_TOKEN": "t"})
    assert answer["error_code"] == "AUTH_FAILED"
    assert ext.requests == [arn]  # the first fetch only; the re-fetch went around it
    assert entry._runner is not None
    assert entry._runner.secrets is not None
    assert entry._runner.secrets.fetches == 2
    assert entry._runner.secrets.cached is not None
    assert entry._runner.secrets.cached.source == "secretsmanager"


COLD_WITH_EXTENSION = """
import json, sys
from alquimista_schema.aws.runner import Runner
answer = Runner.from_environment().handle({}, request_id="cold-ext")
print(json.dumps({"answer": answer, "heavy": [m for m in ("boto3", "botocore", "sqlalchemy",
                                                         "alembic") if m in sys.modules]}))
"""


def test_a_cold_noop_with_the_extension_imports_nothing_heavy(
        head_url: URL, make_secret: Callable[..., str], moto_endpoint: str, tls: TLS) -> None:
    import os
    import subprocess
    import sys

    from tests.support import extension_standin

    arn = make_secret(secret_for(head_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    with extension_standin.serve(moto_endpoint, token="cold") as ext:
        env.update({"DB_SECRET_ARN": arn, "DB_SSLROOTCERT": str(tls.ca),
                    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(ext.port),
                    "AWS_SESSION_TOKEN": "cold"})
        done = subprocess.run([sys.executable, "-c", COLD_WITH_EXTENSION], env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"]["status"] == "noop", result
    assert result["heavy"] == []  # no boto3, and no SQLAlchemy or Alembic either
    assert ext.requests == [arn]


def test_a_failed_audit_write_shows_in_the_answer(invoke: Invoke, head_url: URL,
                                                  make_secret: Callable[..., str]) -> None:
    """A role without CREATE on public (PostgreSQL 15's default): the outcome stands, and
    the answer says the audit row is missing."""
    from tests.support.helpers import role

    grants = ("GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version TO {role}",)
    with role(head_url, "no_audit", "no-audit-pw-1", *grants) as url:
        LEAK_WATCH.add(url.password or "")
        command.stamp(url, "020")
        answer = invoke({}, secret=make_secret(secret_for(url)))
    assert answer["error_code"] == "MIGRATION_FAILED", answer  # not the view's owner
    # the runner's own tables, both out of reach (the audit row is tried first: at start)
    audit_row, checksums = answer["warnings"]
    assert checksums == ("checksums were not recorded: this role may not write "
                         "alquimista_schema_checksums (grant SELECT, INSERT, UPDATE, DELETE on it)")
    assert audit_row.startswith("the audit row was not written: permission denied")


# --- the handler on a developer's machine (issue 21) ---------------------------------


def _run_locally(event: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("DB_SECRET_ARN", "AWS_LAMBDA_FUNCTION_NAME", "DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "lambda_entry", event], cwd=ROOT,
                          env={**environ, **env}, capture_output=True, text=True, timeout=120)


def test_the_handler_runs_locally_against_a_database_url(head_url: URL) -> None:
    url = head_url.render_as_string(hide_password=False)
    done = _run_locally('{"action": "current"}', DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["revision"], answer["is_head"]) == ("success", HEAD, True)
    steps = [json.loads(line)["step"] for line in done.stderr.splitlines()]
    assert steps[0] == "event.accepted"
    assert str(head_url.password) not in done.stdout + done.stderr
    bad = _run_locally('{"action": "nope"}', DATABASE_URL=url)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error_code"] == "BAD_EVENT"
    assert _run_locally("not json").returncode == 2


def test_on_lambda_database_url_is_never_read(head_url: URL) -> None:
    done = _run_locally('{"action": "current"}', AWS_LAMBDA_FUNCTION_NAME="runner",
                        DATABASE_URL=head_url.render_as_string(hide_password=False))
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert answer["error_code"] == "BAD_CONFIG"
    assert "DB_SECRET_ARN is not set" in answer["error"]


class _Raising(Mapping[str, Any]):
    """An event no JSON decoder makes: a Mapping whose every read raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("unreadable")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("unreadable")

    def __len__(self) -> int:
        return 1


def test_the_answer_comes_even_when_the_event_or_the_context_cannot_be_read() -> None:
    """Issue 31: reading the action and the time left sat outside the error handling."""
    def no_time() -> int:
        raise RuntimeError("no context")

    answer = Runner.from_environment({}).handle(_Raising(), request_id="r",
                                                remaining_ms=no_time)
    assert (answer["status"], answer["action"]) == ("error", "invalid"), answer
    assert answer["request_id"] == "r"
