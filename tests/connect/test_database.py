"""URLs and connections: malformed input is refused clearly, and no message carries a secret."""

from __future__ import annotations

import time
import traceback
from typing import Any, cast

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from alquimista_schema.cli import main
from alquimista_schema.connect import database, dsn
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DatabaseUnreachable,
    SchemaError,
)

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


def test_a_second_at_after_user_and_password_is_refused_where_sqlalchemy_would_guess() -> None:
    """make_url reads ``x=a@b`` as an option here; the password could as well end at the
    last '@' (issue 31): refused, never guessed."""
    with pytest.raises(ConfigurationError, match="must be percent-encoded"):
        dsn.parse("postgresql://u:p@h:5433/d?sslmode=require&x=a@b")


@pytest.mark.parametrize("url", [
    "postgresql://app:2024/Kx9q-NEVER-SHOWN@db.example.com:5432/prod",  # / in the password
    "postgresql://u:p?w:NEVER-SHOWN@h/db",  # ? and : in the password
    "postgresql+psycopg2://u:p%40NEVER-SHOWN@[::1]:5433/d?sslmode=require&x=a%40b",
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


def test_a_url_libpq_refuses_is_tried_once_and_is_bad_config_in_the_lambda_and_cli(
        pg_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: the Lambda retried a URL with an option libpq does not know for 40 s
    (8 attempts) and called it unreachable. libpq's own refusal ("invalid dsn") is the
    URL's fault: BAD_CONFIG after one attempt, whatever the budget."""
    from alquimista_schema.aws.runner import Runner

    url = pg_server.update_query_dict({"bogus_option": "1"}).render_as_string(
        hide_password=False)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    with pytest.raises(ConfigurationError, match="unknown option 'bogus_option'") as caught, \
            database.connect(url, budget=30):
        pass
    assert type(caught.value) is ConfigurationError
    assert slept == []
    answer = Runner.from_environment({"DATABASE_URL": url}).handle(
        {"action": "current"}, request_id="r", remaining_ms=lambda: 120_000)
    assert (answer["error_code"], slept) == ("BAD_CONFIG", []), answer
    assert "libpq refused the database URL's options" in answer["error"]
    result = CliRunner().invoke(main, ["current"], env={"DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert "unknown option 'bogus_option'" in result.stderr


# --- the Dsn: rendered as a URL, the password masked unless asked ------------------------

DSNS = [
    # fields; rendered with the password; and as shown
    (Dsn("db.internal", 5432, "migrator", "p@ss:w/rd", "app", {"sslmode": "require"}),
     "postgresql+psycopg2://migrator:p%40ss%3Aw%2Frd@db.internal:5432/app?sslmode=require",
     "postgresql+psycopg2://migrator:***@db.internal:5432/app?sslmode=require"),
    (Dsn("::1", 5433, "u", "p", "d", {}), "postgresql+psycopg2://u:p@[::1]:5433/d",
     "postgresql+psycopg2://u:***@[::1]:5433/d"),
    (Dsn(None, None, None, None, "d", {"host": "/var/run/postgresql"}),
     "postgresql+psycopg2:///d?host=/var/run/postgresql",
     "postgresql+psycopg2:///d?host=/var/run/postgresql"),
    (Dsn("h", None, "u", None, None, {}), "postgresql+psycopg2://u@h/",
     "postgresql+psycopg2://u@h/"),
    (Dsn(None, None, None, None, None, {}), "postgresql+psycopg2:///", "postgresql+psycopg2:///"),
    (Dsn("h", 1, "us@er:x/y", "", "my db/x", {"application_name": "a b&c",
                                              "sslrootcert": "/a b/ca.pem"}),
     "postgresql+psycopg2://us%40er%3Ax%2Fy:@h:1/my%20db%2Fx?application_name=a%20b%26c&"
     "sslrootcert=/a%20b/ca.pem",
     "postgresql+psycopg2://us%40er%3Ax%2Fy:***@h:1/my%20db%2Fx?application_name=a%20b%26c&"
     "sslrootcert=/a%20b/ca.pem"),
]


@pytest.mark.parametrize(("fields", "full", "shown"), DSNS,
                         ids=[str(i) for i in range(len(DSNS))])
def test_a_dsn_renders_as_the_url_it_was_parsed_from(fields: Dsn, full: str,
                                                     shown: str) -> None:
    assert fields.render_as_string(hide_password=False) == full
    assert fields.render_as_string() == shown
    assert repr(fields) == str(fields) == f"Dsn({shown!r})"
    assert dsn.parse(full) == fields  # and back


@pytest.mark.parametrize(("url", "query"), [
    ("postgresql://u@h/d?application_name=&sslmode=require",
     {"application_name": "", "sslmode": "require"}),  # an empty value is kept
    ("postgresql://u@h/d?next=http://elsewhere/x", {"next": "http://elsewhere/x"}),
])
def test_the_query_is_read_whole(url: str, query: dict[str, str]) -> None:
    assert dict(dsn.parse(url).query) == query


LONG = "x" * 25
SCHEME_REFUSALS = [
    (f"postgresql://u:p@h/d?sslmode={LONG}", "the database URL's sslmode must be one of "
     f"disable, allow, prefer, require, verify-ca, verify-full, not {'x' * 20!r}"),
    (f"{LONG}://u:p@h/d", f"the database URL must be a postgresql:// URL, not {'x' * 20}://"),
    ("postgre_sql://u:p@h/d", "the database URL must be a postgresql:// URL, not postgre_sql://"),
    (f"postgresql+{LONG}://u:p@h/d", f"the database URL names driver {'x' * 20!r}; this "
     "package uses psycopg2: write postgresql:// or postgresql+psycopg2://"),
    ("postgresql://u:p@[::1]x/d", "the database URL's port is not a number"),
    ("postgresql://u:p@[::1]]/d", "the database URL's port is not a number"),
    ("postgresql://u:p@h:\uff15\uff14\uff13\uff12/d",  # fullwidth digits: not ASCII
     "the database URL's port is not a number"),
]


@pytest.mark.parametrize(("url", "message"), SCHEME_REFUSALS,
                         ids=[str(i) for i in range(len(SCHEME_REFUSALS))])
def test_each_refusal_of_a_url_is_exact(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        dsn.parse(url)
    assert str(caught.value) == message


# --- what the driver said, translated: one case per branch of describe_connect_error -------

REACH = ("check that the server is running and the host and port are right; from a Lambda, "
         "that the cluster's security group admits 5432 from the function's security group "
         "and the function's subnets route to the cluster")
AUTH = ("PostgreSQL at db:6432 refused the credentials of user 'app': check the user name and "
        "password (or the secret they come from)")
TLS_ADVICE = "for Aurora, set DB_SSLROOTCERT to the RDS CA bundle; the server must offer TLS"
SAID = [
    # what the driver said; the package's error, its message, retryable?
    ('FATAL:  password authentication failed for user "app"', AuthenticationFailed, AUTH, None),
    ('FATAL:  PAM authentication failed for user "app"', AuthenticationFailed, AUTH, None),
    ("fe_sendauth: no password supplied", AuthenticationFailed, AUTH, None),
    ('FATAL:  database "nope" does not exist', ConfigurationError,
     "database 'app' does not exist on db:6432: create it, or fix the URL", None),
    ('FATAL:  role "app" does not exist', DatabaseUnreachable,
     f'cannot reach PostgreSQL at db:6432 (FATAL:  role "app" does not exist): {REACH}', True),
    ('server certificate for "db" does not match host name "x"', DatabaseUnreachable,
     'TLS with PostgreSQL at db:6432 failed (server certificate for "db" does not match '
     f'host name "x"): {TLS_ADVICE}', False),
    ("SSL SYSCALL error: EOF detected\nmore", DatabaseUnreachable,
     f"TLS with PostgreSQL at db:6432 failed (SSL SYSCALL error: EOF detected): {TLS_ADVICE}",
     False),
    ("timeout expired", DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (no answer before the connect timeout): {REACH}", True),
    ("Connection timed out", DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (no answer before the connect timeout): {REACH}", True),
    ('could not translate host name "db" to address: Temporary failure in name resolution',
     DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (the host name does not resolve): {REACH}", True),
    ("Name or service not known", DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (the host name does not resolve): {REACH}", True),
    ("connection to server failed: Connection refused", DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (connection refused): {REACH}", True),
    ("  something else\nsecond line  ", DatabaseUnreachable,
     f"cannot reach PostgreSQL at db:6432 (something else): {REACH}", True),
    ("", DatabaseUnreachable, f"cannot reach PostgreSQL at db:6432 (connection failed): {REACH}",
     True),
]


@pytest.mark.parametrize(("said", "kind", "message", "retryable"), SAID,
                         ids=[f"{i}-{kind.__name__}" for i, (_, kind, _, _) in enumerate(SAID)])
def test_each_thing_the_driver_says_has_its_own_error(
        said: str, kind: type[SchemaError], message: str, retryable: bool | None) -> None:
    url = database.parse_url("postgresql://app:secret-NEVER-SHOWN@db:6432/app")
    error = database.describe_connect_error(
        url, OperationalError("connect", {}, psycopg2.OperationalError(said)))
    assert type(error) is kind
    assert str(error) == message
    if retryable is not None:
        assert isinstance(error, DatabaseUnreachable)
        assert error.retryable is retryable


def test_without_a_host_or_port_the_libpq_defaults_are_named() -> None:
    """(and an error without the driver's own under it is quoted as SQLAlchemy words it)"""
    bare = OperationalError("connect", {}, cast(Any, None))
    error = database.describe_connect_error(database.parse_url("postgresql:///app"), bare)
    first = str(bare).splitlines()[0]
    assert str(error) == f"cannot reach PostgreSQL at localhost:5432 ({first}): {REACH}"


def test_a_dsn_is_taken_as_it_is_never_parsed_again() -> None:
    """A secret's host is whatever it holds: a '?' in it is no query (it fails to resolve)."""
    given = Dsn("db?x", 5432, "u", "p@ss", "d", {"sslmode": "require"})
    url = database.parse_url(given)
    assert (url.host, url.port, url.username, url.password, url.database, dict(url.query)) == (
        "db?x", 5432, "u", "p@ss", "d", {"sslmode": "require"})
