"""Secrets Manager through boto3 (moto's server): each failure is named by its real cause.

Missing credentials were blamed on the network ("functions in isolated subnets need a
Secrets Manager VPC endpoint"); they are named as what they are.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alquimista_schema.cli import main
from alquimista_schema.connect import secrets as credentials
from alquimista_schema.connect import secretsmanager
from alquimista_schema.errors import SecretUnavailable

NETWORK_HINT = "need a Secrets Manager VPC endpoint"


@pytest.fixture
def no_credentials(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """moto's endpoint and a region, and no credentials from anywhere boto3 looks."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_is_named_not_blamed_on_the_network(no_credentials: None) -> None:
    began = time.monotonic()
    with pytest.raises(SecretUnavailable) as caught:
        credentials.SecretCache("alquimista/any").get()
    assert time.monotonic() - began < 5
    message = str(caught.value)
    assert message == ("cannot read secret 'alquimista/any': no AWS credentials were found: "
                       "configure them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
                       "with `aws configure` or `aws sso login`); on Lambda they come from the "
                       "function's execution role")
    assert NETWORK_HINT not in message


def test_the_cli_says_the_same(no_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["current", "--secret-arn", "alquimista/any"])
    assert result.exit_code == 1
    assert "no AWS credentials were found: configure them" in result.stderr
    assert NETWORK_HINT not in result.stderr


def test_half_the_credentials_are_named_too(no_credentials: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # and no secret key
    with pytest.raises(SecretUnavailable, match="the AWS credentials could not be loaded "
                                                r"\(PartialCredentialsError: ") as caught:
        credentials.SecretCache("alquimista/any").get()
    assert NETWORK_HINT not in str(caught.value)


def test_an_unreachable_endpoint_still_gets_the_network_hint(
        aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
    with pytest.raises(SecretUnavailable, match=NETWORK_HINT) as caught:
        credentials.SecretCache("alquimista/any").get()
    assert "(EndpointConnectionError)" in str(caught.value)


def test_the_client_is_bounded() -> None:
    """Connect 3 s, read 5 s, two attempts in all: a fetch takes 16 s at worst."""
    assert (secretsmanager.CONNECT_TIMEOUT, secretsmanager.READ_TIMEOUT,
            secretsmanager.MAX_ATTEMPTS, secretsmanager.WORST_CASE) == (3, 5, 2, 16)
