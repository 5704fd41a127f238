"""An Aurora cluster snapshot, taken before an upgrade changes anything.

When an upgrade has revisions to apply and the run names a cluster, the run skeleton
calls :func:`take` after its guards and before the first revision: the snapshot is
created, tagged and waited for until ``available``, within the run's own limit and
never past its deadline. If it cannot be made, or is not ready in time, nothing is
applied (``SNAPSHOT_FAILED``). The cluster is always named (``DB_CLUSTER_IDENTIFIER``),
never guessed from a host name.
"""

from __future__ import annotations

import re
import time
from typing import Any

from alquimista_schema.errors import SnapshotFailed

PREFIX = "alquimista-schema-"
"""Every snapshot's name starts so: the stack grants the snapshot actions on this prefix."""
POLL_SECONDS = 5.0
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
_FAILED = ("failed", "deleting", "deleted", "incompatible-restore")


def name_for(start: str | None, end: str | None, request_id: str) -> str:
    """The snapshot's name: the revision range and the request id, as RDS allows them
    (letters, digits and single hyphens, starting with a letter, at most 255)."""
    raw = f"{PREFIX}{start or 'base'}-to-{end or 'base'}-{request_id}".lower()
    name = re.sub("-{2,}", "-", _NOT_ALLOWED.sub("-", raw)).strip("-")
    return name[:255].rstrip("-")


def take(client: Any, cluster: str, name: str, *, tags: dict[str, str], wait_until: float,
         poll: float = POLL_SECONDS) -> str:
    """Create snapshot ``name`` of ``cluster`` and wait until it is available; return its
    name. Raise SnapshotFailed (nothing applied yet) when it cannot be made in time."""
    from botocore.exceptions import BotoCoreError, ClientError

    began = time.monotonic()
    try:
        _create(client, cluster, name, tags)
        while True:
            found = client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)
            status = found["DBClusterSnapshots"][0]["Status"]
            if status == "available":
                return name
            if status in _FAILED:
                raise SnapshotFailed(f"snapshot {name} of cluster {cluster!r} is {status}; "
                                     "nothing was applied")
            if time.monotonic() + poll > wait_until:
                raise SnapshotFailed(
                    f"snapshot {name} of cluster {cluster!r} was still {status} after "
                    f"{time.monotonic() - began:.0f}s, and waiting longer would pass the run's "
                    "limit or deadline; nothing was applied (the snapshot may still complete: "
                    "run again once it is available, or raise SNAPSHOT_WAIT_SECONDS and the "
                    "function's timeout)")
            time.sleep(poll)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SnapshotFailed(
            f"cannot snapshot cluster {cluster!r} ({error.get('Code', 'refused')}: "
            f"{error.get('Message', '')}); nothing was applied. Check DB_CLUSTER_IDENTIFIER and "
            "that the function's role may rds:CreateDBClusterSnapshot") from exc
    except BotoCoreError as exc:
        raise SnapshotFailed(
            f"cannot reach the RDS API to snapshot cluster {cluster!r} ({type(exc).__name__}); "
            "nothing was applied. Functions in isolated subnets need an RDS VPC endpoint whose "
            "security group admits HTTPS from the function") from exc


def _create(client: Any, cluster: str, name: str, tags: dict[str, str]) -> None:
    """Ask for the snapshot; one already there under this run's name is this run's own
    (a retried request whose first answer was lost)."""
    from botocore.exceptions import ClientError

    try:
        client.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=name, DBClusterIdentifier=cluster,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "DBClusterSnapshotAlreadyExistsFault":
            raise
