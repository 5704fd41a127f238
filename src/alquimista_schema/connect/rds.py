"""Amazon RDS through boto3: a bounded client, for IAM tokens and cluster snapshots.

Imported only when one is needed (boto3 costs about 0.23 s to import). The endpoint may
be overridden the way boto3 reads it (``AWS_ENDPOINT_URL_RDS``, for a local endpoint).
"""

from __future__ import annotations

import os
from typing import Any

from alquimista_schema.errors import ConfigurationError

# Each call is bounded: a snapshot step waits by polling, never by a long read.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
MAX_ATTEMPTS = 2


def client(region: str | None = None, session: Any = None) -> Any:
    """Return an RDS client with short timeouts; the region from the runtime's environment."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                    retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"})
    session = session or boto3.session.Session()
    fallback = os.environ.get("AWS_REGION") or region
    try:
        return session.client("rds", config=config,
                              region_name=None if session.region_name else fallback)
    except NoRegionError:
        raise ConfigurationError("no AWS region for RDS: set AWS_REGION (the Lambda runtime "
                                 "sets it)") from None
