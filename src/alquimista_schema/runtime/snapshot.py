"""An Aurora cluster snapshot, taken before an upgrade changes anything, as RDS takes it.

When an upgrade has revisions to apply and the run names a cluster, the run skeleton
calls :func:`take` after its guards and before the first revision: a snapshot is
created (or an earlier run's, still good, is reused), tagged and waited for until
``available``, within the run's own limit and never past its deadline. If it cannot be
made, nothing is applied (``SNAPSHOT_FAILED``); if it is still being created when the
wait runs out, nothing is applied either (``SNAPSHOT_PENDING``) and the next run waits
for that same snapshot. After a successful upgrade :func:`prune` keeps the newest few
of the runner's own snapshots. The cluster is always named (``DB_CLUSTER_IDENTIFIER``),
never guessed from a host name.

The runner's own snapshots are those both named with :data:`PREFIX` (the stack grants
the snapshot actions on it) and tagged ``project=alquimista-schema``: a snapshot
someone else made is never reused nor deleted.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alquimista_schema.errors import SnapshotFailed, SnapshotPending

PREFIX = "alquimista-schema-"
"""Every snapshot's name starts so: the stack grants the snapshot actions on this prefix."""
PROJECT = "alquimista-schema"
"""The ``project`` tag's value on every snapshot the runner makes."""
POLL_SECONDS = 5.0
MAX_NAME = 63
"""RDS's DBClusterSnapshotIdentifier: 1 to 63 letters, digits or hyphens."""
_DIGEST = 12  # hex digits of the (start, end, request id) digest: 48 bits
_RANGE = MAX_NAME - len(PREFIX) - len("-to-") - 1 - _DIGEST  # what the revision range may use
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
_FAILED = ("failed", "deleting", "deleted", "incompatible-restore")
_USABLE = ("creating", "available")
_TAG_VALUE_MAX = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_NEVER = datetime.max.replace(tzinfo=UTC)  # a snapshot RDS has not dated yet is the newest


def name_for(start: str | None, end: str | None, request_id: str) -> str:
    """The snapshot's name, inside RDS's rule for any input: at most 63 lower-case letters,
    digits and single hyphens, starting with a letter (the prefix), never ending with a
    hyphen. It reads as the revision range (cut to fit) and ends with a digest of the
    range and the request id, so distinct runs never share a name while a retried
    request gets its own again. The full range and the request id are in the tags."""
    first, last = _part(start or "base"), _part(end or "base")
    if len(first) + len(last) > _RANGE:
        half = _RANGE // 2
        first_room = max(half, _RANGE - len(last))
        first = first[:first_room].rstrip("-")
        last = last[:_RANGE - len(first)].rstrip("-")
    digest = hashlib.sha256(json.dumps([start, end, request_id]).encode()).hexdigest()
    return f"{PREFIX}{first}-to-{last}-{digest[:_DIGEST]}"


def _part(text: str) -> str:
    """A revision id as a name's part: runs of anything but a-z and 0-9 become one hyphen."""
    return _NOT_ALLOWED.sub("-", text.lower()).strip("-") or "x"


def tag_value(text: str) -> str:
    """``text`` as RDS takes a tag's value: up to 256 letters, digits, spaces and
    ``_.:/=+-@``, not starting with ``aws:`` or ``rds:`` (others become ``_``)."""
    kept = "".join(c if c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" else "_"
                   for c in text[:_TAG_VALUE_MAX])
    if kept[:4].lower() in ("aws:", "rds:"):
        kept = f"_{kept}"[:_TAG_VALUE_MAX]
    return kept or "_"


def tags_for(request_id: str, start: str | None, end: str | None) -> dict[str, str]:
    """The tags that make a snapshot the runner's own and say what it was taken before."""
    return {"project": PROJECT, "request-id": tag_value(request_id),
            "from-revision": tag_value(start or "base"), "to-revision": tag_value(end or "base")}


def tags_of(found: dict[str, Any]) -> dict[str, str]:
    """A described snapshot's tags (DescribeDBClusterSnapshots returns its TagList)."""
    return {t["Key"]: t.get("Value", "") for t in found.get("TagList") or []}


def own(client: Any, cluster: str) -> list[dict[str, Any]]:
    """The runner's own manual snapshots of ``cluster``, newest first: named with PREFIX
    and tagged ``project=alquimista-schema``, both."""
    pages = client.get_paginator("describe_db_cluster_snapshots").paginate(
        DBClusterIdentifier=cluster, SnapshotType="manual")
    found = [item for page in pages for item in page["DBClusterSnapshots"]
             if item["DBClusterSnapshotIdentifier"].startswith(PREFIX)
             and tags_of(item).get("project") == PROJECT]
    return sorted(found, key=lambda s: (s.get("SnapshotCreateTime") or _NEVER,
                                        s["DBClusterSnapshotIdentifier"]), reverse=True)


def pending(client: Any, cluster: str, wanted: str,
            unconsumed: Callable[[str], bool]) -> str | None:
    """An earlier run's snapshot this run may wait for instead of taking another, or None.

    The newest of the runner's own snapshots of the cluster taken at this run's start
    (its ``from-revision`` tag is ``wanted``), being created or available, if
    ``unconsumed`` says no run has applied anything since it was taken (see
    audit.unconsumed). Only the newest is asked: any older one predates whatever
    consumed the newest.
    """
    for item in own(client, cluster):
        if tags_of(item).get("from-revision") == wanted and item["Status"] in _USABLE:
            name = str(item["DBClusterSnapshotIdentifier"])
            return name if unconsumed(name) else None
    return None


def take(client: Any, cluster: str, name: str, *, tags: dict[str, str], wait_until: float,
         poll: float | None = None, reuse: Callable[[str], bool] | None = None,
         chosen: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> str:
    """Create snapshot ``name`` of ``cluster`` (or, when ``reuse`` allows, wait for an
    earlier run's: see :func:`pending`) until it is available; return its name.

    ``chosen`` hears the name before the wait, so a run that stops waiting still says
    which snapshot it made; ``sleep`` waits between two polls (a signal may end it).
    Raise SnapshotPending when it is still being created at ``wait_until``, SnapshotFailed
    when it cannot be made; nothing is applied then.
    """
    began = time.monotonic()
    with _said(cluster):
        found = pending(client, cluster, tags["from-revision"], reuse) if reuse else None
        if found is None:
            _create(client, cluster, name, tags)
        name = found or name
        if chosen is not None:
            chosen(name)
        return _wait(client, cluster, name, wait_until,
                     POLL_SECONDS if poll is None else poll, began, sleep)


def _wait(client: Any, cluster: str, name: str, wait_until: float, poll: float,
          began: float, sleep: Callable[[float], None]) -> str:
    """Poll until available. A poll that would end past ``wait_until`` is never started:
    the wait ends by its limit (give or take one bounded describe call)."""
    while True:
        found = client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)
        status = found["DBClusterSnapshots"][0]["Status"]
        if status == "available":
            return name
        if status in _FAILED:
            raise SnapshotFailed(f"snapshot {name} of cluster {cluster!r} is {status}; "
                                 "nothing was applied")
        if time.monotonic() + poll > wait_until:
            raise SnapshotPending(
                f"snapshot {name} of cluster {cluster!r} is still being created ({status} "
                f"after {time.monotonic() - began:.0f}s, as long as this run may wait: "
                "SNAPSHOT_WAIT_SECONDS, within the function's time); nothing was applied. "
                "Running the upgrade again waits for this same snapshot instead of taking "
                "another")
        sleep(poll)


@contextmanager
def _said(cluster: str) -> Iterator[None]:
    """The RDS API's refusals and failures as SnapshotFailed, saying what to check."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SnapshotFailed(
            f"cannot snapshot cluster {cluster!r} ({error.get('Code', 'refused')}: "
            f"{error.get('Message', '')}); nothing was applied. Check DB_CLUSTER_IDENTIFIER and "
            "that the function's role may rds:CreateDBClusterSnapshot and "
            "rds:DescribeDBClusterSnapshots") from exc
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


def prune(client: Any, cluster: str, keep: int, current: str, *,
          until: float | None = None) -> list[str]:
    """Delete all but the newest ``keep`` of the runner's own available snapshots of
    ``cluster`` (``current``, this run's, always kept); return what is left undeleted
    and why, one line each (empty when all went well). Never raises: a snapshot kept
    too many costs storage, never an upgrade. ``until``: the ``time.monotonic()`` after
    which no further deletion starts."""
    from botocore.exceptions import BotoCoreError, ClientError

    problems: list[str] = []
    try:
        mine = [s["DBClusterSnapshotIdentifier"] for s in own(client, cluster)
                if s["Status"] == "available"]
    except (ClientError, BotoCoreError) as exc:
        return [f"old snapshots of cluster {cluster!r} were not pruned: {why(exc)}"]
    ordered = [current, *(name for name in mine if name != current)]
    for name in ordered[max(keep, 1):]:
        if until is not None and time.monotonic() >= until:
            problems.append(f"snapshot {name} was not deleted: no time left in this run")
            continue
        try:
            client.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=name)
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"snapshot {name} was not deleted: {why(exc)}")
    return problems


def retention_days(client: Any, cluster: str) -> int:
    """The cluster's backup retention period in days: Aurora restores to any time inside
    it, so a restore point can be restored to for that long."""
    [found] = client.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"]
    return int(found["BackupRetentionPeriod"])


def why(exc: Exception) -> str:
    """A ClientError's code and message, else a BotoCoreError's kind."""
    error = getattr(exc, "response", {}).get("Error", {})
    if error:
        return f"{error.get('Code', 'refused')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
