"""Secrets Manager through boto3: a bounded client, and GetSecretValue's errors translated.

Imported only when a secret is fetched this way: the handler's cold no-op with AWS's
Parameters and Secrets extension never loads boto3 (about 0.23 s).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from alquimista_schema.connect import clients
from alquimista_schema.errors import ConfigurationError, SecretUnavailable

# Bounded so an unreachable endpoint fails well inside a Lambda's time, not at its kill.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 5
MAX_ATTEMPTS = 2
# A fetch may take up to connect + read timeout, twice (one retry).
WORST_CASE = MAX_ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT)


def client(session: Any = None, region: str | None = None,
           within: float | None = None) -> Any:
    """Return a Secrets Manager client with short timeouts and few retries.

    The region comes from the runtime's environment (``AWS_REGION`` on Lambda), else
    from the secret's ARN; the endpoint may be overridden the way boto3 reads it
    (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, for a local endpoint).
    """
    connect: float = CONNECT_TIMEOUT
    read: float = READ_TIMEOUT
    attempts = MAX_ATTEMPTS
    if within is not None:  # one attempt that ends within ``within`` seconds
        connect = read = max(within / 2 - 0.25, 0.5)
        attempts = 1
    from botocore.exceptions import NoRegionError

    try:
        return clients.client("secretsmanager", connect=connect, read=read,
                              attempts=attempts, region=region, session=session)
    except NoRegionError:
        raise ConfigurationError(
            "no AWS region: set AWS_REGION (the Lambda runtime sets it), or give the secret's "
            "full ARN, which names its region") from None
    except clients.credential_errors() as exc:  # found while making the client: say so
        raise SecretUnavailable(f"the AWS credentials could not be loaded "
                                f"({type(exc).__name__}: {exc})") from exc


def arn_region(secret_id: str) -> str | None:
    """Return the region named in a secret ARN (arn:aws:secretsmanager:REGION:...)."""
    parts = secret_id.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


class _NoSecretBodies(logging.Filter):
    """Drop log records that carry a secret's value (botocore logs bodies at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot render is not ours to judge
            return True
        return "SecretString" not in message and "SecretBinary" not in message


_FILTER = _NoSecretBodies()


def silence_secret_bodies() -> None:
    """Attach the filter to every botocore/urllib3 logger (a Lambda at DEBUG logs bodies).

    Filters act only on records made by the logger they are attached to, so each
    existing logger of those libraries gets one; botocore makes its loggers at import.
    """
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if n.split(".")[0] in ("botocore", "boto3", "urllib3")]
    for name in ["botocore", *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


NO_CREDENTIALS = ("no AWS credentials were found: configure them (AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, AWS_PROFILE with `aws configure` or `aws sso login`); "
                  "on Lambda they come from the function's execution role")


def get_secret_value(secret_id: str, client: Any) -> Mapping[str, Any]:
    """Return GetSecretValue's response for ``secret_id``, errors translated.

    Each kind of failure has its own words: the secret refused (ClientError), no
    credentials or unusable ones (never blamed on the network), the network (the VPC
    endpoint hint), anything else of botocore's (named).
    """
    from botocore import exceptions as boto

    silence_secret_bodies()
    credential_errors = clients.credential_errors()
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except boto.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = {
            "ResourceNotFoundException": "no such secret: check its name or ARN and the region",
            "AccessDeniedException": "the function's role may not read it (secretsmanager:"
                                     "GetSecretValue, and kms:Decrypt for its key)",
            "DecryptionFailure": "its KMS key cannot be used by the function's role",
            "UnrecognizedClientException": "the AWS credentials are not valid (an expired "
                                           "session, or a key from another partition)",
        }.get(code, code or "request refused")
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {hint}") from exc
    except boto.NoCredentialsError as exc:
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {NO_CREDENTIALS}") from exc
    except credential_errors as exc:
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: the AWS credentials could "
                                f"not be loaded ({type(exc).__name__}: {exc})") from exc
    except (boto.ConnectionError, boto.HTTPClientError) as exc:
        raise SecretUnavailable(
            f"cannot reach Secrets Manager for secret {secret_id!r} ({type(exc).__name__}): "
            "functions in isolated subnets need a Secrets Manager VPC endpoint whose security "
            "group admits HTTPS (443) from the function's security group") from exc
    except boto.BotoCoreError as exc:
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {type(exc).__name__}: "
                                f"{exc}") from exc
    return response  # type: ignore[no-any-return]
