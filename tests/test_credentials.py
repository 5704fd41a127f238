"""Secret to URL: every password character survives, TLS is always on, env fills gaps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from alquimista_schema import credentials
from alquimista_schema.cli import main
from alquimista_schema.database import connect
from alquimista_schema.errors import SecretUnavailable
from tests.conftest import MIGRATOR, MIGRATOR_PASSWORD, TLS, leaks


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
    assert credentials.arn_region(arn) == "sa-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    ok = CliRunner().invoke(main, ["current", "--secret-arn", arn])
    assert ok.exit_code == 0, ok.output
    by_name = CliRunner().invoke(main, ["current", "--secret-arn", "alquimista/region"])
    assert by_name.exit_code == 1
    assert by_name.stderr.startswith("error: no AWS region: set AWS_REGION")
