"""URLs and connections: malformed input is refused clearly, and no message carries a secret."""

from __future__ import annotations

import time
import traceback

import pytest
from click.testing import CliRunner

from alquimista_schema.cli import main
from alquimista_schema.connect import database
from alquimista_schema.errors import ConfigurationError, DatabaseUnreachable

# The tail of a password with an unescaped '@' lands in the host part.
AT_IN_PASSWORD = "postgresql://u:p@ssw0rd-Part-NEVER-SHOWN@db.internal/app"


def chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_an_at_sign_in_the_password_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigurationError) as caught:
        database.parse_url(AT_IN_PASSWORD)
    assert "must be percent-encoded (@ is %40" in str(caught.value)
    assert "NEVER-SHOWN" not in chain_text(caught.value)  # nor in any chained error


@pytest.mark.parametrize("url", [
    "postgresql://u:secret-NEVER-SHOWN@h:notaport/d", "mysql://u:secret-NEVER-SHOWN@h/d",
    "not a url secret-NEVER-SHOWN",
])
def test_malformed_urls_never_echo_the_text(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        database.parse_url(url)
    assert "NEVER-SHOWN" not in chain_text(caught.value)


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://u:p@h/d?sslmode=bogus", "sslmode must be one of disable, allow, prefer"),
    ("postgresql://u:p\x00w@h/d", "holds a NUL character"),
    ("postgresql://u:p\udcffw@h/d", "is not valid UTF-8"),  # how a non-UTF-8 env var decodes
])
def test_what_the_driver_cannot_take_is_refused_up_front(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        database.parse_url(url)


@pytest.mark.parametrize("url", [
    "postgresql://app:2024/Kx9q-NEVER-SHOWN@db.example.com:5432/prod",  # / in the password
    "postgresql://u:p?w:NEVER-SHOWN@h/db",  # ? and : in the password
    "postgresql+psycopg2://u:p%40NEVER-SHOWN@[::1]:5433/d?sslmode=require&x=a@b",
    "postgresql:///d?host=/var/run/postgresql",
    "postgresql://u@h", "postgresql://h/d?x=a@b",
])
def test_urls_parse_as_sqlalchemy_parses_them(url: str) -> None:
    """dsn.parse is the one grammar; it reads every realistic URL as make_url does."""
    from sqlalchemy.engine import make_url

    from alquimista_schema.connect import dsn

    parsed, theirs = dsn.parse(url), make_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, dict(parsed.query)) \
        == (theirs.username, theirs.password, theirs.host, theirs.port, dict(theirs.query))
    assert parsed.database == (theirs.database or None)
    assert "NEVER-SHOWN" not in repr(parsed) + str(parsed)
    assert database.parse_url(url).render_as_string(hide_password=False) == \
        theirs.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False) \
        or parsed.database is None


def test_cli_shows_one_line_even_with_traceback() -> None:
    for args in (["current", "--url", AT_IN_PASSWORD],
                 ["--traceback", "current", "--url", AT_IN_PASSWORD]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        shown = result.output + (chain_text(result.exception) if result.exception else "")
        assert "NEVER-SHOWN" not in shown
        assert "percent-encoded" in shown


def test_non_utf8_database_url_from_the_environment_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["current"],
                                env={"DATABASE_URL": "postgresql://u:p\udcffw@h/d"})
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: the database URL is not valid UTF-8 (check "
                                     "DATABASE_URL's encoding)")


def test_no_connect_attempt_outlives_the_deadline(blackhole: tuple[str, int]) -> None:
    host, port = blackhole
    url = f"postgresql://u:p@{host}:{port}/d"
    began = time.monotonic()
    with pytest.raises(DatabaseUnreachable, match="no time left to connect"), \
            database.connect(url, budget=30, deadline=time.monotonic() + 1.5):
        pass
    assert time.monotonic() - began < 0.5  # refused at once: an attempt needs 2 s
    began = time.monotonic()
    with pytest.raises(DatabaseUnreachable), \
            database.connect(url, connect_timeout=10, budget=30,
                             deadline=time.monotonic() + 3.5):
        pass
    assert time.monotonic() - began < 4.5  # cut to the time left, not the 10 s configured
