"""After an upgrade: the runner's old snapshots pruned, and the restore point recorded,
against moto's RDS over HTTP (the ``rds_api`` fixture of test_snapshot.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.connect import rds
from alquimista_schema.connect.database import connect
from alquimista_schema.runtime import audit, snapshot
from alquimista_schema.runtime.run import Run
from tests.runtime.test_snapshot import CLUSTER, StillCreating, snapshots
from tests.runtime.test_snapshot import rds_api as rds_api  # the fixture, shared
from tests.support.helpers import Invoke, secret_for
from tests.support.revisions import HEAD

# --- retention --------------------------------------------------------------------------


def own_left(client: Any) -> list[str]:
    return [s["DBClusterSnapshotIdentifier"] for s in snapshot.own(client, CLUSTER)]


def test_twenty_upgrades_keep_the_newest_three_and_never_anothers(
        rds_api: Any, head_url: URL) -> None:
    rds_api.create_db_cluster_snapshot(  # the prefix, not the tag: someone else's
        DBClusterSnapshotIdentifier="alquimista-schema-by-hand", DBClusterIdentifier=CLUSTER)
    rds_api.create_db_cluster_snapshot(  # the tag, not the prefix: someone else's
        DBClusterSnapshotIdentifier="manual-before-maintenance", DBClusterIdentifier=CLUSTER,
        Tags=[{"Key": "project", "Value": "alquimista-schema"}])
    taken: list[str] = []
    for n in range(20):
        command.downgrade(head_url, "-1", run=Run(action="downgrade"))
        result = command.upgrade(head_url, "head", run=Run(
            request_id=f"up-{n}", snapshot=True, cluster=CLUSTER, snapshot_keep=3))
        assert result.warnings == [], result.warnings
        assert result.snapshot is not None
        taken.append(result.snapshot)
        assert own_left(rds_api)[0] == result.snapshot  # the newest is this run's
    assert len(set(taken)) == 20  # each upgrade after a change takes its own
    left = own_left(rds_api)
    print(f"the runner's snapshots left after 20 upgrades with SNAPSHOT_KEEP=3: {len(left)}")
    assert sorted(left) == sorted(taken[-3:])
    assert {"alquimista-schema-by-hand", "manual-before-maintenance"} <= {
        s["DBClusterSnapshotIdentifier"] for s in snapshots(rds_api)}
    assert len(snapshots(rds_api)) == 5


class RefusesDeletes(StillCreating):
    """A role without rds:DeleteDBClusterSnapshot: RDS answers AccessDenied."""

    def describe_db_cluster_snapshots(self, **kwargs: Any) -> Any:
        return self.real.describe_db_cluster_snapshots(**kwargs)

    def delete_db_cluster_snapshot(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                          "DeleteDBClusterSnapshot")


def test_a_prune_that_fails_is_a_warning_and_never_fails_the_upgrade(
        rds_api: Any, head_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(2):
        command.downgrade(head_url, "-1", run=Run(action="downgrade"))
        command.upgrade(head_url, "head", run=Run(request_id=f"keep-{n}", snapshot=True,
                                                  cluster=CLUSTER))
    monkeypatch.setattr(rds, "client", lambda *a, **k: RefusesDeletes(rds_api))
    command.downgrade(head_url, "-1", run=Run(action="downgrade"))
    result = command.upgrade(head_url, "head", run=Run(request_id="refused", snapshot=True,
                                                        cluster=CLUSTER, snapshot_keep=1))
    assert result.to_revision == HEAD
    assert len(result.warnings) == 2, result.warnings
    assert all(w.endswith("was not deleted: AccessDenied: not authorized")
               for w in result.warnings)
    assert len(own_left(rds_api)) == 3


# --- the restore point --------------------------------------------------------------------


def test_every_upgrade_that_changes_something_records_a_restore_point(
        rds_api: Any, empty_url: URL) -> None:
    """Snapshot or not: the server's time before the first revision committed, and with
    the cluster named, until when it can be restored to (7 days of backup retention)."""
    result = command.upgrade(empty_url, "head", run=Run(cluster=CLUSTER))
    assert (result.snapshot, result.warnings) == (None, [])
    assert result.restore_point is not None
    assert result.restore_point.tzinfo is not None
    assert result.restorable_until == result.restore_point + timedelta(days=7)
    with connect(empty_url) as conn:
        first = conn.exec_driver_sql(
            "SELECT min(recorded_at) FROM alquimista_schema_checksums").scalar()
        [row] = audit.entries(conn)
    assert first is not None
    assert result.restore_point < first
    assert row["restore_point"] == result.restore_point
    noop = command.upgrade(empty_url, "head", run=Run(cluster=CLUSTER))
    assert (noop.restore_point, noop.restorable_until) == (None, None)


def test_a_retention_that_cannot_be_read_is_a_warning(rds_api: Any, empty_url: URL) -> None:
    result = command.upgrade(empty_url, "017", run=Run(cluster="no-such-cluster"))
    assert result.to_revision == "017"
    assert result.restore_point is not None
    assert result.restorable_until is None
    [warning] = result.warnings
    assert "could not be described (DBClusterNotFoundFault" in warning


def test_an_old_audit_table_gains_the_restore_point_column(rds_api: Any, empty_url: URL) -> None:
    with connect(empty_url) as conn:
        conn.exec_driver_sql(audit.AUDIT.ddl().replace(",\n    restore_point timestamptz", ""))
        conn.commit()
    result = command.upgrade(empty_url, "017", run=Run())
    with connect(empty_url) as conn:
        [row] = audit.entries(conn)
    assert row["restore_point"] == result.restore_point is not None


# --- through the Lambda ----------------------------------------------------------------


def test_the_lambda_keeps_snapshot_keep_and_warns_of_a_prune_that_fails(
        rds_api: Any, head_url: URL, invoke: Invoke, make_secret: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SNAPSHOT_BEFORE_UPGRADE": "true", "DB_CLUSTER_IDENTIFIER": CLUSTER,
           "SNAPSHOT_KEEP": "1"}
    secret = make_secret(secret_for(head_url))
    for _ in range(2):
        command.downgrade(head_url, "-1", run=Run(action="downgrade"))
        answer = invoke({}, secret=secret, env=env)
        assert (answer["status"], "warnings" in answer) == ("success", False), answer
        assert own_left(rds_api) == [answer["snapshot"]]
        assert datetime.fromisoformat(answer["restore_point"]).utcoffset() == timedelta(0)
    monkeypatch.setattr(rds, "client", lambda *a, **k: RefusesDeletes(rds_api))
    command.downgrade(head_url, "-1", run=Run(action="downgrade"))
    refused = invoke({})
    assert refused["status"] == "success", refused
    [warning] = refused["warnings"]
    assert warning == (f"snapshot {own_left(rds_api)[1]} was not deleted: AccessDenied: "
                       "not authorized")


def test_the_lambda_answers_a_restore_point_without_a_snapshot(
        rds_api: Any, empty_url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> None:
    answer = invoke({}, secret=make_secret(secret_for(empty_url)),
                    env={"DB_CLUSTER_IDENTIFIER": "not-this-one"})
    assert answer["status"] == "success", answer
    assert "snapshot" not in answer
    assert datetime.fromisoformat(answer["restore_point"]).utcoffset() == timedelta(0)
    assert "restorable_until" not in answer
    [warning] = answer["warnings"]
    assert "cluster 'not-this-one' could not be described (DBClusterNotFoundFault" in warning
