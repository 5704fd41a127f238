"""A stand-in for Lambda's Runtime API (version 2018-06-01), enough for AWS's runtime client.

Written from AWS's documented API ("Using the Lambda runtime API for custom runtimes" and
its OpenAPI file): ``GET /runtime/invocation/next`` hands out one event with the
``Lambda-Runtime-*`` headers; the runtime answers on ``POST /runtime/invocation/{id}/response``
or ``.../error``, or reports ``POST /runtime/init/error`` and exits; each is acknowledged
with 202. Unlike Lambda, nothing waits forever: the queue of events is bounded, ``next``
gives up (500, "runtime should exit") after ``next_wait`` seconds, and ``invoke`` raises
after its timeout or as soon as the runtime process is gone. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.serving import send_json, serving

PREFIX = "/2018-06-01/runtime"
MAX_BODY = 6 * 1024 * 1024  # Lambda's limit for a synchronous response payload
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"


@dataclass(frozen=True)
class Outcome:
    """What the runtime said about one invocation (or about its own start)."""

    kind: str  # "response", "error" or "init-error"
    request_id: str | None
    body: Any
    error_type: str | None


class RuntimeAPIError(AssertionError):
    """The runtime did not answer as the Runtime API expects."""


class RuntimeAPI:
    """Serve events to one runtime process and collect its answers."""

    def __init__(self, *, function_arn: str, timeout_ms: int = 300_000,
                 max_events: int = 16, next_wait: float = 120.0) -> None:
        self.function_arn = function_arn
        self.timeout_ms = timeout_ms
        self.next_wait = next_wait
        self.requests: list[str] = []  # "METHOD path", in order: what the client called
        self._events: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=max_events)
        self._outcomes: queue.Queue[Outcome] = queue.Queue(maxsize=max_events + 1)
        self._current: str | None = None
        self._closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))

    @property
    def address(self) -> str:
        """The value of AWS_LAMBDA_RUNTIME_API: host and port, no scheme."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @contextmanager
    def serving(self) -> Iterator[RuntimeAPI]:
        """Run the server for the block; stop it (and release any waiting ``next``) after."""
        with serving(self._server, poll_interval=0.1, before_stop=self._closed.set,
                     join_timeout=10):
            yield self

    def invoke(self, event: Any, *, timeout: float,
               exited: Callable[[], int | None] = lambda: None) -> Outcome:
        """Queue one event and wait, at most ``timeout`` seconds, for what the runtime says."""
        request_id = str(uuid.uuid4())
        self._events.put((request_id, json.dumps(event).encode()), timeout=timeout)
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            try:
                outcome = self._outcomes.get(timeout=0.2)
            except queue.Empty:
                code = exited()
                if code is not None and self._outcomes.empty():
                    raise RuntimeAPIError(f"the runtime exited (code {code}) before answering "
                                          f"{request_id}") from None
                continue
            if outcome.kind != "init-error" and outcome.request_id != request_id:
                raise RuntimeAPIError(f"answer for {outcome.request_id}, expected {request_id}")
            return outcome
        raise RuntimeAPIError(f"no answer to {request_id} within {timeout:.0f} s")

    # --- called by the request handler -------------------------------------------------

    def _next(self) -> tuple[str, bytes] | None:
        ends = time.monotonic() + self.next_wait
        while not self._closed.is_set() and time.monotonic() < ends:
            try:
                self._current, body = self._events.get(timeout=0.2)
            except queue.Empty:
                continue
            return self._current, body
        return None

    def _record(self, kind: str, request_id: str | None, body: bytes,
                error_type: str | None) -> bool:
        if kind != "init-error" and request_id != self._current:
            return False
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        self._current = None
        self._outcomes.put_nowait(Outcome(kind, request_id, parsed, error_type))
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime stopped mid-connection is the end of a test, not an error to print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the C client keeps its connection alive

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: the test reports what matters."""

        def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            send_json(self, code, body, headers)

        def do_GET(self) -> None:
            api.requests.append(f"GET {self.path}")
            if self.path != f"{PREFIX}/invocation/next":
                self._send(404, {"errorType": "NotFound", "errorMessage": self.path})
                return
            event = api._next()
            if event is None:
                self._send(500, {"errorType": "NoMoreEvents",
                                 "errorMessage": "the test is over: exit"})
                return
            request_id, body = event
            deadline = int(time.time() * 1000) + api.timeout_ms
            self._send(200, body, {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                "Lambda-Runtime-Trace-Id":
                    f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            })

        def do_POST(self) -> None:
            api.requests.append(f"POST {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"errorType": "RequestEntityTooLarge",
                                 "errorMessage": f"{length} bytes"})
                return
            body = self.rfile.read(length)
            kind, request_id = _route(self.path)
            if kind is None:
                self._send(404, {"errorType": "NotFound", "errorMessage": self.path})
            elif api._record(kind, request_id, body, self.headers.get(ERROR_TYPE)):
                self._send(202, {"status": "OK"})
            else:
                self._send(400, {"errorType": "InvalidRequestID",
                                 "errorMessage": f"no invocation {request_id} in flight"})

    return Handler


def _route(path: str) -> tuple[str | None, str | None]:
    """Map a POST path to (kind, request id)."""
    if path == f"{PREFIX}/init/error":
        return "init-error", None
    parts = path.removeprefix(f"{PREFIX}/invocation/").split("/")
    if path.startswith(f"{PREFIX}/invocation/") and len(parts) == 2 and \
            parts[1] in ("response", "error"):
        return parts[1], parts[0]
    return None, None
