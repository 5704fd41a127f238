"""AWS as boto3 really calls it: moto's server over HTTP, secrets in it, the real handler.

Every moto-backed test runs behind tests/support/aws_rules.py: a call AWS would refuse (an
identifier, tag or schedule off AWS's documented rules) gets AWS's error, never moto's
leniency. ``moto_endpoint`` installs the layer in this process; ``aws`` also puts it in the
children a test starts (ALQUIMISTA_AWS_RULES=1 and tests/support/aws_rules_site on
PYTHONPATH: its sitecustomize installs the layer when the child imports botocore).

Also a silent TCP port (a host that never answers).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import aws_rules
from tests.support.helpers import TLS, Invoke

RULES_SITE = os.path.join(os.path.dirname(__file__), "aws_rules_site")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Secrets Manager served by moto's server over HTTP, as boto3 really calls it, behind
    the layer that refuses what AWS refuses (installed here, for the whole session)."""
    import socket

    from moto.server import ThreadedMotoServer

    aws_rules.install()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Any:
    """Point boto3 at the local endpoint the way it reads it: from the environment."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    # children (the CLI, python -m lambda_entry) go through the same layer
    monkeypatch.setenv(aws_rules.ENABLE, "1")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([RULES_SITE, *([path] if path else [])]))
    return boto3.client("secretsmanager")


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections and never says a word (a silent host)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def make_secret(aws: Any) -> Callable[..., str]:
    def make(value: dict[str, Any] | str) -> str:
        name = f"alquimista/test/{uuid.uuid4().hex[:8]}"
        body = value if isinstance(value, str) else json.dumps(value)
        return str(aws.create_secret(Name=name, SecretString=body)["ARN"])
    return make


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, aws: Any, tls: TLS) -> Invoke:
    """Call the real handler as Lambda does: a fresh container, then warm invocations."""
    import lambda_entry.handler as entry

    monkeypatch.setattr(entry, "_runner", None)
    monkeypatch.setenv("DB_SSLROOTCERT", str(tls.ca))
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "ENVIRONMENT", "LOCK_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)

    def call(event: Any, *, secret: str | None = None, remaining_ms: int = 300_000,
             env: dict[str, str] | None = None) -> dict[str, Any]:
        if secret is not None:
            monkeypatch.setenv("DB_SECRET_ARN", secret)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        if env:
            monkeypatch.setattr(entry, "_runner", None)  # new configuration: a new container
        ends = time.monotonic() + remaining_ms / 1000
        context = SimpleNamespace(
            aws_request_id=f"req-{uuid.uuid4().hex[:8]}",
            get_remaining_time_in_millis=lambda: int((ends - time.monotonic()) * 1000))
        answer = entry.handler(event, context)
        json.dumps(answer)  # always serialisable
        print("ANSWER", json.dumps(answer))  # scanned for leaked secrets like any output
        return answer
    return call
