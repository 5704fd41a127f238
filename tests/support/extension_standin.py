"""A stand-in for AWS's Parameters and Secrets Lambda Extension, forwarding to moto.

Written from AWS's documented interface (GET /secretsmanager/get?secretId=..., the
session token in X-Aws-Parameters-Secrets-Token, GetSecretValue's JSON back); it proves
only that the runner speaks that interface, not how the real layer caches or fails.
The secret itself comes from moto's Secrets Manager, through boto3, as the layer's
own call would. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"


@dataclass
class Extension:
    port: int
    token: str
    requests: list[str] = field(default_factory=list)
    """The secret ids asked for, in order."""


@contextmanager
def serve(endpoint: str, token: str, region: str = "sa-east-1") -> Iterator[Extension]:
    """Run the stand-in on a free port; answer from moto's Secrets Manager at ``endpoint``."""
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    state = Extension(0, token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            secret_id = parse_qs(url.query).get("secretId", [""])[0]
            state.requests.append(secret_id)
            if url.path != "/secretsmanager/get" or not secret_id:
                return self._send(400, {"message": "bad request"})
            if self.headers.get(TOKEN_HEADER) != state.token:
                return self._send(403, {"message": "missing or wrong token"})
            try:
                found = client.get_secret_value(SecretId=secret_id)
            except client.exceptions.ResourceNotFoundException:
                return self._send(400, {"message": "secret not found"})
            body: dict[str, Any] = {k: v for k, v in found.items() if k in (
                "ARN", "Name", "VersionId", "SecretString", "VersionStages")}
            return self._send(200, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet: the body holds the secret
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
