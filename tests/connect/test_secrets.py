"""Secret to URL: every password character survives, TLS is always on, env fills gaps."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema.cli import main
from alquimista_schema.connect import secrets as credentials
from alquimista_schema.connect import secretsmanager
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import DeadlineExceeded, SecretUnavailable
from tests.support.helpers import MIGRATOR, MIGRATOR_PASSWORD, TLS, leaks


def rds(url: URL, **extra: Any) -> dict[str, Any]:
    return {"username": url.username, "password": url.password, "host": "localhost",
            "port": url.port, "dbname": url.database, **extra}


def test_password_with_url_metacharacters_connects(migrator_url: URL) -> None:
    assert set("@:/%?") <= set(MIGRATOR_PASSWORD)
    url = credentials.url_from_secret(rds(migrator_url), {})
    assert url.query == {"sslmode": "require"}
    with connect(url) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == MIGRATOR
        assert conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))\
            .scalar() is True
    assert MIGRATOR_PASSWORD not in url.render_as_string(hide_password=True)
    assert not leaks(repr(url) + str(url))


def test_verify_full_with_a_ca_bundle(migrator_url: URL, tls: TLS) -> None:
    url = credentials.url_from_secret(rds(migrator_url), {"DB_SSLROOTCERT": str(tls.ca)})
    assert url.query == {"sslmode": "verify-full", "sslrootcert": str(tls.ca)}
    with connect(url) as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_master_secret_takes_the_rest_from_the_environment(migrator_url: URL) -> None:
    master = {"username": MIGRATOR, "password": MIGRATOR_PASSWORD}
    env = {"DB_HOST": "localhost", "DB_PORT": str(migrator_url.port),
           "DB_NAME": migrator_url.database or ""}
    url = credentials.url_from_secret(master, env)
    assert (url.host, url.port, url.database) == ("localhost", migrator_url.port,
                                                  migrator_url.database)
    with connect(url) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == MIGRATOR


def test_the_secret_wins_over_the_environment() -> None:
    url = credentials.url_from_secret(
        {"username": "u", "password": "p", "host": "writer", "port": 5432, "dbname": "app"},
        {"DB_HOST": "elsewhere", "DB_PORT": "6543", "DB_NAME": "other"})
    assert (url.host, url.port, url.database) == ("writer", 5432, "app")


@pytest.mark.parametrize(("secret", "expected"), [
    ({"password": "p", "host": "h", "dbname": "d"}, "lacks username"),
    ({"username": "u", "password": "p", "dbname": "d"}, "lacks host (or DB_HOST)"),
    ({"username": "u", "password": "p", "host": "h"}, "lacks dbname (or DB_NAME)"),
    ({"username": "u", "password": "p", "host": "h", "dbname": "d", "port": "x"},
     "port that is not a number"),
])
def test_incomplete_secrets_name_what_is_missing(secret: dict[str, Any], expected: str) -> None:
    with pytest.raises(SecretUnavailable, match=expected.replace("(", r"\(").replace(")", r"\)")):
        credentials.url_from_secret(secret, {})


def test_cli_uses_the_same_secret_path(aws: Any, migrator_url: URL, tls: TLS,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    arn = aws.create_secret(Name="alquimista/cli", SecretString=json.dumps(rds(migrator_url)))
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["upgrade", "017", "--secret-arn", arn["ARN"]])
    print(result.output)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("applied 2 revision(s): base -> 017")
    both = CliRunner().invoke(main, ["current", "--secret-arn", arn["ARN"], "--url", "x"])
    assert both.exit_code == 2


def test_leak_detector_sees_raw_and_encoded_passwords() -> None:
    from urllib.parse import quote

    assert leaks(f"...{MIGRATOR_PASSWORD}...")
    assert leaks(f"postgresql://m:{quote(MIGRATOR_PASSWORD, safe='')}@h/d")
    assert not leaks("postgresql://m:***@h/d")


def test_region_comes_from_the_arn_when_none_is_configured(
        aws: Any, migrator_url: URL, tls: TLS, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = aws.create_secret(Name="alquimista/region",
                            SecretString=json.dumps(rds(migrator_url)))["ARN"]
    assert secretsmanager.arn_region(arn) == "sa-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    ok = CliRunner().invoke(main, ["current", "--secret-arn", arn])
    assert ok.exit_code == 0, ok.output
    by_name = CliRunner().invoke(main, ["current", "--secret-arn", "alquimista/region"])
    assert by_name.exit_code == 1
    assert by_name.stderr.startswith("error: no AWS region: set AWS_REGION")


def test_botocore_at_debug_never_logs_the_secret(aws: Any, migrator_url: URL,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A Lambda at log level DEBUG: botocore logs response bodies; never the secret's."""
    arn = aws.create_secret(Name="alquimista/debug",
                            SecretString=json.dumps(rds(migrator_url)))["ARN"]
    caplog.set_level(logging.DEBUG)  # the root logger, as the runtime's level does
    cache = credentials.SecretCache(arn)
    assert cache.get().url.password == MIGRATOR_PASSWORD
    botocore_lines = [r for r in caplog.records if r.name.startswith("botocore")]
    assert len(botocore_lines) > 10, "DEBUG logging is not really on: the test proves nothing"
    assert "SecretString" not in caplog.text
    assert not leaks(caplog.text)


def test_aws_region_alone_is_a_region(aws: Any, migrator_url: URL, tls: TLS,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    aws.create_secret(Name="alquimista/by-name", SecretString=json.dumps(rds(migrator_url)))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "sa-east-1")
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    result = CliRunner().invoke(main, ["current", "--secret-arn", "alquimista/by-name"])
    assert result.exit_code == 0, result.output


def test_a_nul_in_the_password_is_named_not_shown() -> None:
    secret = {"username": "u", "password": MIGRATOR_PASSWORD + "\x00", "host": "h",
              "dbname": "d"}
    with pytest.raises(SecretUnavailable, match="has a NUL character in its password") as caught:
        credentials.url_from_secret(secret, {})
    assert not leaks(str(caught.value))


def test_no_fetch_starts_that_could_outlive_the_deadline(
        monkeypatch: pytest.MonkeyPatch, blackhole: tuple[str, int], aws: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://{blackhole[0]}:{blackhole[1]}")
    cache = credentials.SecretCache("alquimista/any")
    began = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="too little time left to fetch secret"):
        cache.get(deadline=time.monotonic() + credentials.MIN_FETCH_SECONDS - 0.5)
    assert time.monotonic() - began < 0.5
    assert cache.fetches == 0
    began = time.monotonic()  # with 4 s left: one short attempt, over before the deadline
    with pytest.raises(SecretUnavailable, match="cannot reach Secrets Manager"):
        cache.get(deadline=time.monotonic() + 4)
    assert time.monotonic() - began < 4


def test_a_dsn_never_shows_its_password_and_round_trips(migrator_url: URL) -> None:
    from sqlalchemy.engine import make_url

    from alquimista_schema.connect.database import parse_url

    dsn = credentials.url_from_secret(rds(migrator_url), {})
    assert not leaks(repr(dsn) + str(dsn) + dsn.render_as_string() + f"{dsn}")
    assert leaks(dsn.render_as_string(hide_password=False))  # shown (encoded) when asked
    parsed = make_url(dsn.render_as_string(hide_password=False))
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database,
            dict(parsed.query)) == (MIGRATOR, MIGRATOR_PASSWORD, "localhost",
                                    migrator_url.port, migrator_url.database,
                                    {"sslmode": "require"})
    assert parse_url(dsn) == parsed
