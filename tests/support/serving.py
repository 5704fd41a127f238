"""What the local HTTP stand-ins share: serving in a thread, and a JSON answer."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any


@contextmanager
def serving(server: socketserver.BaseServer, *, poll_interval: float = 0.5,
            before_stop: Callable[[], Any] = lambda: None,
            join_timeout: float = 5) -> Iterator[None]:
    """Serve ``server`` from a daemon thread for the block; then ``before_stop`` (to let a
    waiting request go), shut it down and close it."""
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        before_stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=join_timeout)


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None) -> None:
    """Answer ``status`` with ``body`` (bytes as they are, anything else as JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
