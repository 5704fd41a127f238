"""From a secret to a connection, field by field, and the extension's exchange, byte by byte.

No Secrets Manager needed except where the fallback is the point (moto's). The messages are
checked word for word: they are what an operator reads at 3 a.m.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from alquimista_schema.connect import secrets
from alquimista_schema.connect.dsn import Dsn
from alquimista_schema.errors import SchemaError, SecretUnavailable
from tests.connect.test_redaction import _answering, http

REQUIRE = {"sslmode": "require"}
FIELDS = {"username": "u", "password": "p", "host": "h", "dbname": "d"}

URLS = [
    # the secret, the environment, the connection
    ({**FIELDS, "port": 6432}, {}, Dsn("h", 6432, "u", "p", "d", REQUIRE)),
    ({**FIELDS, "port": "6432", "engine": "postgres"}, {}, Dsn("h", 6432, "u", "p", "d", REQUIRE)),
    ({**FIELDS, "engine": "postgresql"}, {}, Dsn("h", 5432, "u", "p", "d", REQUIRE)),
    ({**FIELDS, "engine": "aurora-postgresql"}, {}, Dsn("h", 5432, "u", "p", "d", REQUIRE)),
    ({"username": "u", "password": "p"}, {"DB_HOST": "eh", "DB_PORT": "7", "DB_NAME": "ed"},
     Dsn("eh", 7, "u", "p", "ed", REQUIRE)),  # a master secret: the rest from the environment
    ({"username": "u", "password": "p", "host": "", "port": "", "dbname": ""},
     {"DB_HOST": "eh", "DB_NAME": "ed"}, Dsn("eh", 5432, "u", "p", "ed", REQUIRE)),
    (FIELDS, {"DB_HOST": "eh", "DB_PORT": "7", "DB_NAME": "ed"},
     Dsn("h", 7, "u", "p", "d", REQUIRE)),  # the secret wins where it names a value
    ({"username": 7, "password": 8, "host": "h", "dbname": 9}, {},
     Dsn("h", 5432, "7", "8", "9", REQUIRE)),
    (FIELDS, {"DB_SSLROOTCERT": "/ca.pem"},
     Dsn("h", 5432, "u", "p", "d", {"sslmode": "verify-full", "sslrootcert": "/ca.pem"})),
]


@pytest.mark.parametrize(("secret", "env", "url"), URLS)
def test_the_secret_and_the_environment_make_the_url(secret: dict[str, Any],
                                                      env: dict[str, str], url: Dsn) -> None:
    assert secrets.url_from_secret(secret, env) == url


def test_the_door_passes_its_environment_the_library_reads_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DB_HOST... fill the secret's gaps from the environment the door hands in (the CLI
    and the Lambda pass theirs); below the doors the process environment is never read."""
    for name, value in {"DB_HOST": "eh", "DB_PORT": "7", "DB_NAME": "ed",
                        "DB_SSLROOTCERT": "/ca.pem"}.items():
        monkeypatch.setenv(name, value)
    assert secrets.url_from_secret({"username": "u", "password": "p"}, os.environ) == Dsn(
        "eh", 7, "u", "p", "ed", {"sslmode": "verify-full", "sslrootcert": "/ca.pem"})
    with pytest.raises(SchemaError, match=r"lacks host \(or DB_HOST\), dbname"):
        secrets.url_from_secret({"username": "u", "password": "p"})


REFUSED = [
    ({}, "secret 'x' lacks username, password, host (or DB_HOST), dbname (or DB_NAME)"),
    ({"username": "u", "host": "h", "dbname": "d"}, "secret 'x' lacks password"),
    ({key: f"{value}\x00" for key, value in FIELDS.items()},
     "secret 'x' has a NUL character in its username, password, host, dbname"),
    ({**FIELDS, "engine": "mysql"}, "secret 'x' is for engine 'mysql', not PostgreSQL"),
    ({**FIELDS, "engine": "a" * 30}, f"secret 'x' is for engine {'a' * 30!r}, not PostgreSQL"),
    ({**FIELDS, "engine": "a" * 31}, "secret 'x' is for engine that is not an engine name, not "
                                     "PostgreSQL"),
    ({**FIELDS, "engine": "MySQL"}, "secret 'x' is for engine that is not an engine name, not "
                                    "PostgreSQL"),
    ({**FIELDS, "engine": 5}, "secret 'x' is for engine that is not an engine name, not "
                              "PostgreSQL"),
    ({**FIELDS, "port": "x"}, "secret 'x' has a port that is not a number"),
    ({**FIELDS, "port": [5432]}, "secret 'x' has a port that is not a number"),
    ({**FIELDS, "host": "db/x"}, "secret 'x' has a host that is not a host name"),
    ({**FIELDS, "host": "u@db"}, "secret 'x' has a host that is not a host name"),
]


@pytest.mark.parametrize(("secret", "message"), REFUSED)
def test_a_secret_that_cannot_make_a_url_is_refused_saying_why(secret: dict[str, Any],
                                                              message: str) -> None:
    with pytest.raises(SecretUnavailable) as caught:
        secrets.url_from_secret(secret, {}, name="secret 'x'")
    assert str(caught.value) == message


def test_the_version_travels_with_the_secret() -> None:
    assert secrets.parse_secret("s", {"SecretString": '{"a": 1}', "VersionId": "v1"}) == (
        {"a": 1}, "v1")
    assert secrets.parse_secret("s", {"SecretString": "{}"}) == ({}, None)


# --- the extension: the request as AWS documents it, the answer bounded -----------------------

def body(secret: dict[str, Any], pad: int = 0) -> bytes:
    """GetSecretValue's answer as JSON, padded with spaces to a given length if asked."""
    raw = json.dumps({"SecretString": json.dumps(secret), "VersionId": "v1"}).encode()
    return raw + b" " * max(pad - len(raw), 0)


@pytest.fixture
def served() -> Iterator[tuple[list[bytes], Any]]:
    """Start answering servers; each request they get is kept."""
    seen: list[bytes] = []
    with contextlib.ExitStack() as stack:
        yield seen, lambda raw: stack.enter_context(_answering(raw, seen))


def test_the_request_is_the_documented_one(served: tuple[list[bytes], Any]) -> None:
    seen, serve = served
    port = serve(http("200 OK", body(FIELDS), "Connection: close"))
    for token, sent in (("tok-1", b"tok-1"), (None, b"")):
        answer = secrets.fetch_from_extension("arn:aws:secretsmanager:x:1:secret:db/a", port,
                                              token, timeout=2)
        assert answer == {"SecretString": json.dumps(FIELDS), "VersionId": "v1"}
        lines = seen[-1].decode().split("\r\n")
        assert lines[0] == ("GET /secretsmanager/get?secretId=arn%3Aaws%3Asecretsmanager%3Ax"
                            "%3A1%3Asecret%3Adb%2Fa HTTP/1.1")
        assert set(lines[1:]) >= {f"Host: localhost:{port}", "Accept: application/json",
                                  "Connection: close",
                                  f"X-Aws-Parameters-Secrets-Token: {sent.decode()}"}


@pytest.mark.parametrize(("port", "said"), [
    (0, f"{secrets.EXTENSION_PORT_ENV}=0 is not a TCP port"),
    (65536, f"{secrets.EXTENSION_PORT_ENV}=65536 is not a TCP port"),
    (1, "nothing listens on 127.0.0.1:1"),  # the lowest and highest ports are asked
    (65535, "nothing listens on 127.0.0.1:65535"),
])
def test_only_a_tcp_port_is_asked(port: int, said: str) -> None:
    assert refusal(port) == said


def refusal(port: int) -> str | None:
    """Why the extension at ``port`` served nothing (None: it served).

    Only the words are kept: a refusal's traceback holds the unread answer and its socket,
    which would then close at some later garbage collection (a ResourceWarning there).
    """
    try:
        secrets.fetch_from_extension("s", port, None, timeout=5)
    except Exception as exc:  # the module's own _ExtensionUnavailable
        return f"{type(exc).__name__}: {exc}".partition(": ")[2]
    return None


MAX = secrets.EXTENSION_MAX_BYTES
ANSWERS = [
    # what the extension answers; what is made of it (a dict, or why not)
    (http("299 Odd", body(FIELDS), "Connection: close"), "it answered HTTP 299 (not the secret)"),
    (http("300 Choices", b"", "Connection: close"),
     "it answered HTTP 300 (a redirect, which is never followed)"),
    (http("399 Odd", b"", "Connection: close"),
     "it answered HTTP 399 (a redirect, which is never followed)"),
    (http("400 Bad Request", b"", "Connection: close"), "it answered HTTP 400 (not the secret)"),
    (http("200 OK", body(FIELDS, MAX), f"Content-Length: {MAX}", "Connection: close"),
     {"SecretString": json.dumps(FIELDS), "VersionId": "v1"}),  # the most it takes
    (http("200 OK", body(FIELDS, MAX + 1), f"Content-Length: {MAX + 1}", "Connection: close"),
     f"its answer would be {MAX + 1:,} bytes, over the {MAX:,} a secret can take"),
    (http("200 OK", body(FIELDS, MAX), "Connection: close"),
     {"SecretString": json.dumps(FIELDS), "VersionId": "v1"}),
    (http("200 OK", body(FIELDS, MAX + 1), "Connection: close"),
     f"its answer went past the {MAX:,} bytes a secret can take"),
    (http("200 OK", body({**FIELDS, "note": "n" * 200_000}), "Connection: close"),
     {"SecretString": json.dumps({**FIELDS, "note": "n" * 200_000}), "VersionId": "v1"}),
]


@pytest.mark.parametrize(("raw", "made"), ANSWERS, ids=[
    "299", "300", "399", "400", "announced max", "announced over", "max", "over", "chunks"])
def test_what_the_extension_answers(served: tuple[list[bytes], Any], raw: bytes,
                                    made: dict[str, Any] | str) -> None:
    _, serve = served
    port = serve(raw)
    if isinstance(made, dict):
        assert secrets.fetch_from_extension("s", port, None, timeout=5) == made
    else:
        assert refusal(port) == made


@pytest.mark.parametrize(("left", "budget"), [(3.35, "1.1"), (2.4, "0.1"), (1.6, "0.8")])
def test_the_extension_leaves_the_fallback_its_time(
        served: tuple[list[bytes], Any], aws: Any, left: float, budget: str) -> None:
    """At most EXTENSION_TIMEOUT; Secrets Manager keeps MIN_FETCH_SECONDS (or half of little)."""
    _, serve = served
    cache = secrets.SecretCache("alquimista/test/absent",
                                env={secrets.EXTENSION_PORT_ENV: str(serve(None))})
    with pytest.raises(SchemaError) as caught:
        cache.get(deadline=time.monotonic() + left)
    assert str(caught.value).endswith(
        f" (the Parameters and Secrets extension did not serve it either: no complete answer "
        f"within {budget}s)")


def test_served_by_the_extension_or_else_by_secrets_manager_saying_why(
        aws: Any, make_secret: Any, moto_endpoint: str,
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.support import extension_standin

    arn = make_secret(FIELDS)
    with extension_standin.serve(moto_endpoint, "tok") as extension:
        env = {secrets.EXTENSION_PORT_ENV: str(extension.port), "AWS_SESSION_TOKEN": "tok"}
        served = secrets.SecretCache(arn, env=env)
        assert served.get().source == "extension"
        assert served.extension_problem is None
        assert extension.requests == [arn]
        refused = secrets.SecretCache(arn, env={**env, "AWS_SESSION_TOKEN": "wrong"})
        with caplog.at_level(logging.WARNING, logger="alquimista_schema.connect.secrets"):
            got = refused.get()
    assert (got.source, got.url) == ("secretsmanager", served.get().url)
    assert refused.extension_problem == "it answered HTTP 403 (not the secret)"
    assert [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith(
        "alquimista_schema")] == [(
        "alquimista_schema.connect.secrets",
        f"the Parameters and Secrets extension did not serve secret {arn!r} (it answered "
        "HTTP 403 (not the secret)); asking Secrets Manager directly")]


def test_the_clis_secret_arn_reads_the_extensions_port_from_its_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's --secret-arn hands the process environment to the cache, as the Lambda
    hands its own; a port that is not one is named, cut to 20 characters."""
    from click.testing import CliRunner

    from alquimista_schema.cli import main

    monkeypatch.setenv(secrets.EXTENSION_PORT_ENV, "p" * 25)
    done = CliRunner().invoke(main, ["current", "--secret-arn", "alquimista/test/absent"])
    assert done.exit_code == 1, done.output
    assert done.output.strip().endswith(
        f"(the Parameters and Secrets extension did not serve it either: "
        f"{secrets.EXTENSION_PORT_ENV}={'p' * 20!r} is not a port)"), done.output


def test_what_the_extension_serves_is_read_as_the_secret_it_names(
        served: tuple[list[bytes], Any]) -> None:
    _, serve = served
    port = serve(http("200 OK", json.dumps({"SecretString": "not json"}).encode(),
                      "Connection: close"))
    cache = secrets.SecretCache("alquimista/db", env={secrets.EXTENSION_PORT_ENV: str(port)})
    with pytest.raises(SecretUnavailable) as caught:
        cache.get()
    assert str(caught.value).startswith("secret 'alquimista/db' is not JSON")


@contextlib.contextmanager
def _endless() -> Iterator[int]:
    """A server that answers 200 and then sends bytes until the client hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            while True:
                conn.sendall(b"x" * 65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_an_endless_answer_is_cut_at_the_cap_not_read_to_its_end() -> None:
    """Read in pieces: a body that never ends is refused at the cap, not at the timeout."""
    with _endless() as port:
        assert refusal(port) == f"its answer went past the {MAX:,} bytes a secret can take"
