"""The Parameters and Secrets extension's fetch, tried the way a hostile or broken local
server would: every case ends within its bound, hands the token and the secret to no one
else, and falls back to Secrets Manager (moto's, through boto3), as the README promises.

The servers here are real HTTP servers on 127.0.0.1, in threads.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alquimista_schema.connect import secrets as credentials
from alquimista_schema.errors import DeadlineExceeded, SecretUnavailable
from tests.support import extension_standin
from tests.support.helpers import LEAK_WATCH, leaks
from tests.support.serving import serving

TOKEN = "session-token-NEVER-ELSEWHERE-7f3a"
REAL_PASSWORD = "real-Pw-from-secrets-manager-NEVER-LOG"
HOSTILE_PASSWORD = "hostile-Pw-served-elsewhere-NEVER-LOG"
LEAK_WATCH.update({TOKEN, REAL_PASSWORD, HOSTILE_PASSWORD})
HOSTILE_SECRET = json.dumps({"username": "attacker", "password": HOSTILE_PASSWORD,
                             "host": "evil.example", "dbname": "x"})


def secret(password: str = REAL_PASSWORD) -> dict[str, Any]:
    return {"username": "migrator", "password": password, "host": "writer.example",
            "port": 5432, "dbname": "alquimista", "engine": "postgres"}


@dataclass
class Server:
    port: int
    seen: list[dict[str, str]] = field(default_factory=list)
    """Headers of every request that reached it (the token among them, if it was sent)."""
    sent: int = 0
    """Body bytes written before the client went away."""


@contextmanager
def serve(respond: Callable[[BaseHTTPRequestHandler, Server], None]) -> Iterator[Server]:
    """A real HTTP server on 127.0.0.1; ``respond`` writes each answer (raw, as it likes)."""
    state = Server(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(dict(self.headers))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                respond(self, state)  # (a reset: the client gave up, as these tests want)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    with serving(server):
        yield state


def hostile_secret(handler: BaseHTTPRequestHandler, _: Server) -> None:
    """Another server: it would serve a secret of its own to whoever asks."""
    body = json.dumps({"SecretString": HOSTILE_SECRET, "VersionId": "evil"}).encode()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def real_secret(make_secret: Callable[..., str]) -> str:
    """The secret in Secrets Manager (moto): what the fallback must bring back."""
    return make_secret(secret())


def cache_for(arn: str, port: int) -> credentials.SecretCache:
    return credentials.SecretCache(arn, env={credentials.EXTENSION_PORT_ENV: str(port),
                                             "AWS_SESSION_TOKEN": TOKEN})


def assert_fell_back(cache: credentials.SecretCache, said: str) -> None:
    creds = cache.get()
    assert (creds.source, creds.url.password) == ("secretsmanager", REAL_PASSWORD)
    assert cache.extension_problem == said


# --- it hands the token and the secret to no one else --------------------------------------


def test_a_redirect_is_not_followed_and_its_secret_is_not_taken(real_secret: str) -> None:
    """It was: a 302 from the local port sent X-Aws-Parameters-Secrets-Token to the other
    server, and the secret that server served was used."""
    with serve(hostile_secret) as elsewhere:
        def redirect(handler: BaseHTTPRequestHandler, _: Server) -> None:
            handler.send_response(302)
            handler.send_header("Location", f"http://127.0.0.1:{elsewhere.port}{handler.path}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with serve(redirect) as local:
            cache = cache_for(real_secret, local.port)
            assert_fell_back(cache, "it answered HTTP 302 (a redirect, which is never followed)")
    assert [h[credentials.EXTENSION_TOKEN_HEADER] for h in local.seen] == [TOKEN]
    assert elsewhere.seen == []  # neither the token nor a request reached it


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_in_the_environment_is_never_used_for_the_extension(
        variable: str, aws: Any, make_secret: Callable[..., str], moto_endpoint: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It was: the request for localhost, token included, went through HTTP_PROXY."""
    arn = make_secret(secret())
    with serve(hostile_secret) as proxy, \
            extension_standin.serve(moto_endpoint, token=TOKEN) as extension:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        creds = cache_for(arn, extension.port).get()
    assert (creds.source, creds.url.password) == ("extension", REAL_PASSWORD)
    assert extension.requests == [arn]
    assert proxy.seen == []


def test_only_the_loopback_address_is_asked() -> None:
    """Whatever `localhost` resolves to: the connection goes to 127.0.0.1 itself."""
    assert credentials.EXTENSION_ADDRESS == "127.0.0.1"
    with serve(hostile_secret) as local:
        response = credentials.fetch_from_extension("any", local.port, TOKEN)
    assert response["VersionId"] == "evil"  # (a stand-in: it serves whatever it serves)
    assert local.seen[0]["Host"] == f"localhost:{local.port}"


# --- it ends within its bound ---------------------------------------------------------------


def drip(handler: BaseHTTPRequestHandler, state: Server) -> None:
    """A byte every 0.4 s: each read is quick, the answer never completes in time."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n")
    handler.wfile.flush()
    for _ in range(500):
        time.sleep(0.4)
        handler.wfile.write(b" ")
        handler.wfile.flush()
        state.sent += 1


def test_a_server_dripping_bytes_is_cut_off_at_the_one_deadline(real_secret: str) -> None:
    """The old 2 s applied to each read: a byte a second held the handler past 20 s."""
    with serve(drip) as local:
        cache = cache_for(real_secret, local.port)
        began = time.monotonic()
        assert_fell_back(cache, f"no complete answer within {credentials.EXTENSION_TIMEOUT:.1f}s")
        took = time.monotonic() - began
    assert credentials.EXTENSION_TIMEOUT <= took < credentials.EXTENSION_TIMEOUT + 1.5, took


def test_the_extension_leaves_the_fallback_its_time(real_secret: str) -> None:
    """With 3.25 s left before the deadline, the extension has 1 s: Secrets Manager keeps its
    MIN_FETCH_SECONDS (2 s, and 0.25 s to spare), and the whole fetch ends before the deadline."""
    with serve(drip) as local:
        cache = cache_for(real_secret, local.port)
        began = time.monotonic()
        creds = cache.get(deadline=began + 3.25)
        took = time.monotonic() - began
    assert creds.source == "secretsmanager"
    assert cache.extension_problem == "no complete answer within 1.0s"
    assert took < 3.25, took


def test_no_deadline_left_means_no_extension_call(real_secret: str) -> None:
    with serve(drip) as local:
        cache = cache_for(real_secret, local.port)
        with pytest.raises(DeadlineExceeded, match="too little time left") as caught:
            cache.get(deadline=time.monotonic() + 0.05)
    assert local.seen == []
    assert "no time left to ask it before the deadline" in str(caught.value)


def huge_announced(handler: BaseHTTPRequestHandler, state: Server) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000000\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(3_000_000_000 // len(chunk)):
        handler.wfile.write(chunk)
        state.sent += len(chunk)


def huge_unannounced(handler: BaseHTTPRequestHandler, state: Server) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n\r\n")  # the body ends when the server closes
    chunk = b"[" * 65536
    for _ in range(3_000_000_000 // len(chunk)):
        handler.wfile.write(chunk)
        state.sent += len(chunk)


@pytest.mark.parametrize(("respond", "said"), [
    (huge_announced, "its answer would be 3,000,000,000 bytes, over the 1,048,576 a secret "
                     "can take"),
    (huge_unannounced, "its answer went past the 1,048,576 bytes a secret can take"),
])
def test_a_huge_body_is_refused_at_the_size_cap(real_secret: str, respond: Any,
                                                said: str) -> None:
    """A 3 GB body reached 5.9 GB of memory; the function has 512 MB."""
    with serve(respond) as local:
        cache = cache_for(real_secret, local.port)
        began = time.monotonic()
        assert_fell_back(cache, said)
        took = time.monotonic() - began
        time.sleep(0.2)
        sent = local.sent
    assert took < credentials.EXTENSION_TIMEOUT, took
    assert sent < 64 * 1024 * 1024  # stopped reading: the rest was never sent


@pytest.mark.parametrize(("body", "said"), [
    (b"[" * 900_000, "its answer could not be read (RecursionError)"),
    (b"not json", "its answer could not be read (JSONDecodeError)"),
    (b"[1, 2]", "its answer is not a JSON object"),
])
def test_a_garbled_answer_falls_back(real_secret: str, body: bytes, said: str) -> None:
    def respond(handler: BaseHTTPRequestHandler, _: Server) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with serve(respond) as local:
        assert_fell_back(cache_for(real_secret, local.port), said)


@pytest.mark.parametrize(("port", "said"), [
    ("70000", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=70000 is not a TCP port"),
    ("two", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT='two' is not a port"),
])
def test_a_port_that_is_no_port_falls_back(real_secret: str, port: str, said: str) -> None:
    cache = credentials.SecretCache(real_secret,
                                    env={credentials.EXTENSION_PORT_ENV: port})
    assert_fell_back(cache, said)


def test_nothing_listening_falls_back_saying_so(real_secret: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert_fell_back(cache_for(real_secret, port), f"nothing listens on 127.0.0.1:{port}")


def test_when_the_fallback_fails_too_both_reasons_are_given(aws: Any) -> None:
    with serve(hostile_secret) as elsewhere:
        def redirect(handler: BaseHTTPRequestHandler, _: Server) -> None:
            handler.send_response(307)
            handler.send_header("Location", f"http://127.0.0.1:{elsewhere.port}/")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with serve(redirect) as local, pytest.raises(SecretUnavailable) as caught:
            cache_for("alquimista/no-such-secret", local.port).get()
    assert str(caught.value) == (
        "cannot read secret 'alquimista/no-such-secret': no such secret: check its name or ARN "
        "and the region (the Parameters and Secrets extension did not serve it either: it "
        "answered HTTP 307 (a redirect, which is never followed))")
    assert elsewhere.seen == []
    assert not leaks(str(caught.value))


def test_the_fallback_is_logged_without_the_secret(
        real_secret: str, caplog: pytest.LogCaptureFixture) -> None:
    def error(handler: BaseHTTPRequestHandler, _: Server) -> None:
        body = json.dumps({"message": HOSTILE_SECRET}).encode()  # an error that quotes one
        handler.send_response(500)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with serve(error) as failing:
        assert_fell_back(cache_for(real_secret, failing.port),
                         "it answered HTTP 500 (not the secret)")
    assert "did not serve secret" in caplog.text
    assert "asking Secrets Manager directly" in caplog.text
    assert not leaks(caplog.text)
