"""boto3 clients made one way: bounded, the region from the runtime.

boto3 is imported only when a client is made (about 0.23 s): a run that calls no AWS
service never pays for it.
"""

from __future__ import annotations

import os
from typing import Any


def credential_errors() -> tuple[type[Exception], ...]:
    """botocore's errors for credentials that cannot load (never the network's)."""
    from botocore import exceptions as boto

    return (boto.PartialCredentialsError, boto.CredentialRetrievalError,
            boto.TokenRetrievalError, boto.SSOError, boto.NoAuthTokenError,
            boto.ProfileNotFound, boto.RefreshWithMFAUnsupportedError)


def client(service: str, *, connect: float, read: float, attempts: int,
           region: str | None, session: Any) -> Any:
    """Return a ``service`` client whose calls are bounded as given.

    The region comes from boto3's own settings, else ``AWS_REGION`` (the Lambda runtime
    sets it; boto3 reads AWS_DEFAULT_REGION), else ``region``. botocore's NoRegionError
    and ``credential_errors()`` (a missing AWS_PROFILE fails while the session is made)
    reach the caller, which says what they mean for its service.
    """
    import boto3
    from botocore.config import Config

    # total_max_attempts counts the first try too (max_attempts would add a retry).
    config = Config(connect_timeout=connect, read_timeout=read,
                    retries={"total_max_attempts": attempts, "mode": "standard"})
    session = session or boto3.session.Session()
    fallback = os.environ.get("AWS_REGION") or region
    return session.client(service, config=config,
                          region_name=None if session.region_name else fallback)
