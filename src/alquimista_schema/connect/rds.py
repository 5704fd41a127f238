"""Amazon RDS through boto3: a bounded client, for IAM tokens and cluster snapshots.

Imported only when one is needed (boto3 costs about 0.23 s to import). The endpoint may
be overridden the way boto3 reads it (``AWS_ENDPOINT_URL_RDS``, for a local endpoint).
"""

from __future__ import annotations

from typing import Any

from alquimista_schema.connect import clients
from alquimista_schema.errors import ConfigurationError, SchemaError, SnapshotFailed

# Each call is bounded: a snapshot step waits by polling, never by a long read.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
MAX_ATTEMPTS = 2


def client(region: str | None = None, session: Any = None, *,
           within: float | None = None,
           failure: type[SchemaError] = SnapshotFailed) -> Any:
    """Return an RDS client with short timeouts; the region from the runtime's environment.

    ``within``: every call must end within these seconds (one attempt, reads cut to fit),
    so a call started near a deadline cannot run past it. ``failure``: raised when the
    AWS credentials cannot load (the snapshot's error by default).
    """
    connect: float = CONNECT_TIMEOUT
    read: float = READ_TIMEOUT
    attempts = MAX_ATTEMPTS
    if within is not None and within < CONNECT_TIMEOUT + READ_TIMEOUT:
        connect = read = max(within / 2, 0.5)
        attempts = 1
    from botocore.exceptions import NoRegionError

    try:
        return clients.client("rds", connect=connect, read=read, attempts=attempts,
                              region=region, session=session)
    except NoRegionError:
        raise ConfigurationError("no AWS region for RDS: set AWS_REGION (the Lambda runtime "
                                 "sets it)") from None
    except clients.credential_errors() as exc:
        raise failure(f"the AWS credentials could not be loaded for RDS "
                      f"({type(exc).__name__}: {exc})") from exc
