"""A stand-in for AWS's Parameters and Secrets Lambda Extension, forwarding to moto.

Written from AWS's documented interface (GET /secretsmanager/get?secretId=..., the
session token in X-Aws-Parameters-Secrets-Token, GetSecretValue's JSON back); it proves
only that the runner speaks that interface, not how the real layer caches or fails.
The secret itself comes from moto's Secrets Manager, through boto3, as the layer's
own call would. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.serving import send_json, serving

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
                return send_json(self, 400, {"message": "bad request"})
            if self.headers.get(TOKEN_HEADER) != state.token:
                return send_json(self, 403, {"message": "missing or wrong token"})
            try:
                found = client.get_secret_value(SecretId=secret_id)
            except client.exceptions.ResourceNotFoundException:
                return send_json(self, 400, {"message": "secret not found"})
            body: dict[str, Any] = {k: v for k, v in found.items() if k in (
                "ARN", "Name", "VersionId", "SecretString", "VersionStages")}
            return send_json(self, 200, body)

        def log_message(self, *args: Any) -> None:  # quiet: the body holds the secret
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    with serving(server):
        yield state
