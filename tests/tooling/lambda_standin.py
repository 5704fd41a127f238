"""A stand-in for Lambda's API over real HTTP, as boto3 calls it (AWS_ENDPOINT_URL_LAMBDA).

It answers GetFunctionConfiguration and Invoke from a script the test writes, can leave an
Invoke unanswered (a function that outlives the caller's wait), and counts what reaches it:
TCP connections, configuration requests and Invokes. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.serving import send_json, serving

HANG = "hang"


@dataclass
class Reply:
    """One scripted answer: a status, a JSON body, and Lambda's headers."""

    body: Any = None
    status: int = 200
    function_error: str | None = None
    log: str | None = None
    error_type: str | None = None


@dataclass
class StandIn:
    endpoint: str = ""
    timeout: int | None = 300
    """The function's configured timeout; None answers GetFunctionConfiguration with a
    denial (AccessDeniedException)."""
    missing: bool = False
    """No such function: both calls answer ResourceNotFoundException."""
    replies: list[Reply | str] = field(default_factory=list)
    """What each Invoke gets, in order (HANG: nothing, until the stand-in stops)."""
    connections: int = 0
    configurations: int = 0
    invocations: list[dict[str, Any]] = field(default_factory=list)
    """Each Invoke received: its function, headers that matter, and event."""
    regions: list[str] = field(default_factory=list)
    """The region of each request's signature (its credential scope)."""


def _region(authorization: str) -> str:
    found = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/lambda/", authorization)
    return found.group(1) if found else ""


class _Server(ThreadingHTTPServer):
    """Holds the stand-in's state, and counts every TCP connection it accepts."""

    daemon_threads = True

    def __init__(self, state: StandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.release = threading.Event()
        self.lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self.lock:
            self.state.connections += 1
        return accepted


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # GetFunctionConfiguration
        state = self.server.state
        with self.server.lock:
            state.configurations += 1
            state.regions.append(_region(self.headers.get("Authorization", "")))
        name = self.path.split("/")[3]
        if state.missing:
            return self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if state.timeout is None:
            return self._error(403, "AccessDeniedException", "not authorized")
        return self._send(200, json.dumps({"FunctionName": name, "Timeout": state.timeout,
                                           "Runtime": "python3.12"}).encode())

    def do_POST(self) -> None:  # Invoke
        state = self.server.state
        event = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            state.regions.append(_region(self.headers.get("Authorization", "")))
            state.invocations.append({
                "function": self.path.split("/")[3],
                "invocation_type": self.headers.get("X-Amz-Invocation-Type"),
                "log_type": self.headers.get("X-Amz-Log-Type"),
                "event": json.loads(event) if event else None})
            reply = state.replies.pop(0) if state.replies else Reply({})
        if state.missing:
            return self._error(404, "ResourceNotFoundException", "Function not found")
        if isinstance(reply, str):  # HANG: the function outlives the caller's wait
            self.server.release.wait(120)
            self.close_connection = True
            return None
        if reply.error_type:
            return self._error(reply.status, reply.error_type, "scripted error")
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if reply.function_error:
            headers["X-Amz-Function-Error"] = reply.function_error
        if reply.log is not None:
            headers["X-Amz-Log-Result"] = base64.b64encode(reply.log.encode()).decode()
        return self._send(reply.status, json.dumps(reply.body).encode(), headers)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send(status, json.dumps({"Type": "User", "message": message}).encode(),
                   {"x-amzn-ErrorType": kind})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        send_json(self, status, body, headers)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve() -> Iterator[StandIn]:
    """Run the stand-in on a free port until the block ends (hanging Invokes are let go)."""
    server = _Server(StandIn())
    server.state.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, before_stop=server.release.set):
        yield server.state


@dataclass
class Silent:
    """A TCP listener that accepts every connection and never says a word."""

    endpoint: str
    connections: int = 0


@contextmanager
def silent() -> Iterator[Silent]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    state = Silent(f"http://127.0.0.1:{listener.getsockname()[1]}")
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never written to
            state.connections += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
