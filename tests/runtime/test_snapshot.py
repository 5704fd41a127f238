"""A cluster snapshot before an upgrade changes anything, against moto's RDS over HTTP."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect import rds
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import SnapshotFailed, SnapshotPending
from alquimista_schema.runtime import audit, snapshot
from alquimista_schema.runtime.run import Run
from tests.support.doors import Door
from tests.support.helpers import Invoke, secret_for, signalled
from tests.support.revisions import HEAD, PREVIOUS, after, previous

BEFORE = previous(PREVIOUS) or "base"  # the revision before the one before the head

CLUSTER = "aurora-alquimista-dev"


@pytest.fixture
def rds_api(aws: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's RDS, reached the way boto3 reads an endpoint: from the environment; a fresh
    cluster named CLUSTER (moto's own state is reset so the name can be reused)."""
    import requests

    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", moto_endpoint)
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    client = rds.client("sa-east-1")
    client.create_db_cluster(DBClusterIdentifier=CLUSTER, Engine="aurora-postgresql",
                             MasterUsername="admin_user", MasterUserPassword="not-a-secret-1",
                             BackupRetentionPeriod=7)
    yield client
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)


def snapshots(client: Any) -> list[dict[str, Any]]:
    """The manual snapshots (moto also makes an automated one with the cluster)."""
    return list(client.describe_db_cluster_snapshots(
        DBClusterIdentifier=CLUSTER, SnapshotType="manual")["DBClusterSnapshots"])


def test_an_upgrade_snapshots_the_cluster_first_and_says_so(
        rds_api: Any, empty_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real = snapshot.take

    def watched(*args: Any, **kwargs: Any) -> str:
        order.append("snapshot")
        return real(*args, **kwargs)

    monkeypatch.setattr(snapshot, "take", watched)
    result = command.upgrade(empty_url, "017", run=Run(
        request_id="Req-42", snapshot=True, cluster=CLUSTER),
        on_applied=lambda item: order.append(item.revision))
    assert order == ["snapshot", "lead_ingestion", "017"]
    assert result.snapshot == snapshot.name_for(None, "017", "Req-42")
    assert result.snapshot.startswith("alquimista-schema-base-to-017-")
    [made] = snapshots(rds_api)
    assert made["DBClusterSnapshotIdentifier"] == result.snapshot
    assert made["Status"] == "available"
    tags = {t["Key"]: t["Value"] for t in rds_api.list_tags_for_resource(
        ResourceName=made["DBClusterSnapshotArn"])["TagList"]}
    assert tags == {"project": "alquimista-schema", "request-id": "Req-42",
                    "from-revision": "base", "to-revision": "017"}
    with connect(empty_url) as conn:
        [row] = audit.entries(conn)
    assert row["snapshot"] == result.snapshot
    assert row["restore_point"] == result.restore_point is not None


def test_a_no_op_never_snapshots(rds_api: Any, head_url: URL) -> None:
    result = command.upgrade(head_url, "head", run=Run(snapshot=True, cluster=CLUSTER))
    assert (result.applied, result.snapshot) == ([], None)
    assert snapshots(rds_api) == []


def test_a_snapshot_that_cannot_be_made_applies_nothing(rds_api: Any, empty_url: URL) -> None:
    with pytest.raises(SnapshotFailed) as caught:
        command.upgrade(empty_url, "head", run=Run(snapshot=True, cluster="no-such-cluster"))
    assert caught.value.code == "SNAPSHOT_FAILED"
    assert "DBClusterNotFoundFault" in str(caught.value)
    assert "nothing was applied" in str(caught.value)
    assert command.current(empty_url) is None
    with connect(empty_url) as conn:
        [row] = audit.entries(conn)
    assert (row["outcome"], row["error_code"], row["applied"]) == (
        "error", "SNAPSHOT_FAILED", [])


class StillCreating:
    """moto makes a snapshot available at once; the real RDS takes minutes. This stand-in
    (written from RDS's documented statuses: creating, then available) reports creating
    to the waiting describe; everything else is moto's."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.created: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def create_db_cluster_snapshot(self, **kwargs: Any) -> Any:
        self.created.append(time.monotonic())
        return self.real.create_db_cluster_snapshot(**kwargs)

    def describe_db_cluster_snapshots(self, **kwargs: Any) -> Any:
        found = self.real.describe_db_cluster_snapshots(**kwargs)
        for item in found["DBClusterSnapshots"]:
            item["Status"] = "creating"
        return found


def timed_wait(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the snapshot's wait ended (returned or raised), by time.monotonic()."""
    ended: list[float] = []
    real = snapshot._wait

    def timed(*args: Any, **kwargs: Any) -> str:
        try:
            return real(*args, **kwargs)
        finally:
            ended.append(time.monotonic())

    monkeypatch.setattr(snapshot, "_wait", timed)
    return ended


def test_a_snapshot_not_ready_in_time_applies_nothing_and_stops_by_its_limit(
        rds_api: Any, empty_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1 s to wait and a poll every 0.4 s, the polls at 0 and 0.4 s find it creating,
    and the one at 0.8 s would end past the limit: it is never started."""
    slow = StillCreating(rds_api)
    monkeypatch.setattr(rds, "client", lambda *a, **k: slow)
    monkeypatch.setattr(snapshot, "POLL_SECONDS", 0.4)
    ended = timed_wait(monkeypatch)
    with pytest.raises(SnapshotPending) as caught:
        command.upgrade(empty_url, "head", run=Run(snapshot=True, cluster=CLUSTER,
                                                    snapshot_wait=1.0))
    waited = ended[0] - slow.created[0]
    assert 0.7 <= waited <= 1.0, waited  # by its limit, never past it
    assert caught.value.code == "SNAPSHOT_PENDING"
    assert isinstance(caught.value, SnapshotFailed)  # what a caller of the old code caught
    message = str(caught.value)
    assert "is still being created" in message
    assert "nothing was applied" in message
    assert "waits for this same snapshot" in message
    assert "timeout" not in message  # the function's timeout is no setting to raise
    assert command.current(empty_url) is None


def test_the_wait_never_passes_the_deadline(rds_api: Any, empty_url: URL,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    slow = StillCreating(rds_api)
    monkeypatch.setattr(rds, "client", lambda *a, **k: slow)
    monkeypatch.setattr(snapshot, "POLL_SECONDS", 0.3)
    ended = timed_wait(monkeypatch)
    run = Run(snapshot=True, cluster=CLUSTER, snapshot_wait=600.0,
              deadline=time.monotonic() + 12.5, margin=10.0)
    with pytest.raises(SnapshotPending):
        command.upgrade(empty_url, "head", run=run)
    limit = run.deadline - run.margin  # type: ignore[operator]
    assert limit - 0.4 <= ended[0] <= limit, (limit, ended)


def test_a_run_after_a_pending_snapshot_waits_for_it_instead_of_taking_another(
        rds_api: Any, empty_url: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = StillCreating(rds_api)
    monkeypatch.setattr(rds, "client", lambda *a, **k: slow)
    monkeypatch.setattr(snapshot, "POLL_SECONDS", 0.1)
    with pytest.raises(SnapshotPending) as caught:
        command.upgrade(empty_url, "017", run=Run(request_id="first", snapshot=True,
                                                   cluster=CLUSTER, snapshot_wait=0.3))
    made = snapshot.name_for(None, "017", "first")
    assert caught.value.progress.snapshot == made  # type: ignore[attr-defined]
    with connect(empty_url) as conn:
        [row] = audit.entries(conn)
    assert (row["error_code"], row["snapshot"], row["applied"]) == (
        "SNAPSHOT_PENDING", made, [])
    monkeypatch.setattr(rds, "client", lambda *a, **k: rds_api)  # now it is available
    result = command.upgrade(empty_url, "head", run=Run(request_id="second", snapshot=True,
                                                         cluster=CLUSTER))
    assert (result.snapshot, result.to_revision) == (made, HEAD)
    assert [s["DBClusterSnapshotIdentifier"] for s in snapshots(rds_api)] == [made]
    # consumed: a run applied revisions since it was taken, so it is never waited for again
    command.downgrade(empty_url, "base", run=Run(action="downgrade"))
    again = command.upgrade(empty_url, "head", run=Run(request_id="third", snapshot=True,
                                                        cluster=CLUSTER))
    assert again.snapshot == snapshot.name_for(None, HEAD, "third")
    assert len(snapshots(rds_api)) == 2


def test_only_the_runners_own_snapshot_taken_at_this_start_is_waited_for(
        rds_api: Any, head_url: URL) -> None:
    """Each stand-in is named in an audit row with nothing applied since (so the audit
    alone would let it be reused): only its name, tag or revision rules it out."""
    def made(name: str, **tags: str) -> None:
        rds_api.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=name, DBClusterIdentifier=CLUSTER,
            Tags=[{"Key": k.replace("_", "-"), "Value": v} for k, v in tags.items()])
        with connect(head_url) as conn:
            audit.record(conn.connection.driver_connection, audit.Entry(
                "by-hand", "test", "upgrade", "head", PREVIOUS, PREVIOUS, "error", snapshot=name))

    command.downgrade(head_url, PREVIOUS, run=Run(action="downgrade"))
    made(f"alquimista-schema-{PREVIOUS}-to-{HEAD}-untagged", from_revision=PREVIOUS)
    made(f"theirs-{PREVIOUS}", project="alquimista-schema", from_revision=PREVIOUS)
    made(f"alquimista-schema-{BEFORE}-to-{HEAD}-older", project="alquimista-schema",
         from_revision=BEFORE)
    result = command.upgrade(head_url, "head", run=Run(request_id="r", snapshot=True,
                                                        cluster=CLUSTER))
    assert result.snapshot == snapshot.name_for(PREVIOUS, HEAD, "r")
    command.downgrade(head_url, PREVIOUS, run=Run(action="downgrade"))
    made(f"alquimista-schema-{PREVIOUS}-to-{HEAD}-mine", project="alquimista-schema",
         from_revision=PREVIOUS)  # the runner's own, at this start: waited for
    again = command.upgrade(head_url, "head", run=Run(request_id="s", snapshot=True,
                                                       cluster=CLUSTER))
    assert again.snapshot == f"alquimista-schema-{PREVIOUS}-to-{HEAD}-mine"


# --- through the doors ----------------------------------------------------------------


def test_the_lambda_snapshots_when_set_and_answers_with_it(
        rds_api: Any, empty_url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> None:
    env = {"SNAPSHOT_BEFORE_UPGRADE": "true", "DB_CLUSTER_IDENTIFIER": CLUSTER}
    answer = invoke({}, secret=make_secret(secret_for(empty_url)), env=env)
    assert answer["status"] == "success", answer
    assert answer["snapshot"] == snapshot.name_for(None, HEAD, answer["request_id"])
    point = datetime.fromisoformat(answer["restore_point"])
    assert point.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(answer["restorable_until"]) == point + timedelta(days=7)
    assert abs(datetime.now(UTC) - point) < timedelta(minutes=1)
    assert [s["DBClusterSnapshotIdentifier"] for s in snapshots(rds_api)] == [
        answer["snapshot"]]
    again = invoke({})
    assert (again["status"], "snapshot" in again) == ("noop", False)
    assert len(snapshots(rds_api)) == 1


def test_the_lambda_answers_snapshot_pending_then_waits_for_the_same_snapshot(
        rds_api: Any, empty_url: URL, invoke: Invoke, make_secret: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the deploy step reads as "not finished yet": SNAPSHOT_PENDING, nothing applied,
    the snapshot named; the next invocation upgrades after that same snapshot."""
    monkeypatch.setattr(rds, "client", lambda *a, **k: StillCreating(rds_api))
    monkeypatch.setattr(snapshot, "POLL_SECONDS", 0.2)
    env = {"SNAPSHOT_BEFORE_UPGRADE": "true", "DB_CLUSTER_IDENTIFIER": CLUSTER,
           "SNAPSHOT_WAIT_SECONDS": "1"}
    pending = invoke({}, secret=make_secret(secret_for(empty_url)), env=env)
    assert (pending["status"], pending["error_code"]) == ("error", "SNAPSHOT_PENDING"), pending
    assert (pending["applied"], pending["to_revision"]) == ([], None)
    assert pending["snapshot"] == snapshot.name_for(None, HEAD, pending["request_id"])
    monkeypatch.setattr(rds, "client", lambda *a, **k: rds_api)
    done = invoke({})
    assert (done["status"], done["snapshot"]) == ("success", pending["snapshot"]), done
    assert len(snapshots(rds_api)) == 1
    assert command.current(empty_url) == HEAD


def test_the_lambda_answers_snapshot_failed_and_applies_nothing(
        rds_api: Any, empty_url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> None:
    for env, said in (({"ENVIRONMENT": "prod"}, "DB_CLUSTER_IDENTIFIER"),
                      ({"SNAPSHOT_BEFORE_UPGRADE": "true",
                        "DB_CLUSTER_IDENTIFIER": "missing-cluster"}, "DBClusterNotFound")):
        answer = invoke({}, secret=make_secret(secret_for(empty_url)), env=env)
        assert answer["error_code"] == "SNAPSHOT_FAILED", answer
        assert said in answer["error"]
        assert answer["applied"] == []
    assert command.current(empty_url) is None


def test_the_cli_takes_snapshot_and_no_snapshot(rds_api: Any, empty_url: URL,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = empty_url.render_as_string(hide_password=False)
    monkeypatch.setenv("DB_CLUSTER_IDENTIFIER", CLUSTER)
    monkeypatch.setenv("ENVIRONMENT", "prod")
    off = CliRunner().invoke(main, ["upgrade", "017", "--no-snapshot", "--url", url])
    assert off.exit_code == 0, off.output
    assert snapshots(rds_api) == []
    on = CliRunner().invoke(main, ["upgrade", "--url", url])  # prod: on by default
    assert on.exit_code == 0, on.output
    [made] = snapshots(rds_api)
    lines = on.stdout.splitlines()
    assert lines[-2:] == [
        f"snapshot: {made['DBClusterSnapshotIdentifier']} (taken before the first revision)",
        f"applied {len(after('017'))} revision(s): 017 -> {HEAD}"]
    [said] = [line for line in on.stderr.splitlines() if line.startswith("restore point")]
    point, until = re.fullmatch(r"restore point: (\S+) \(restorable until (\S+)\)",
                                said).groups()  # type: ignore[union-attr]
    assert datetime.fromisoformat(until) - datetime.fromisoformat(point) == timedelta(days=7)
    assert made["DBClusterSnapshotIdentifier"].startswith(f"alquimista-schema-017-to-{HEAD}-")


def test_aws_credentials_that_cannot_load_are_said_and_apply_nothing(
        rds_api: Any, empty_url: URL, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing AWS_PROFILE fails while boto3's session is made: a snapshot error that
    says so, never an unexpected one."""
    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    result = CliRunner().invoke(main, ["upgrade", "--snapshot", "--url",
                                       empty_url.render_as_string(hide_password=False)],
                                env={"DB_CLUSTER_IDENTIFIER": CLUSTER})
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "error: the AWS credentials could not be loaded for RDS (ProfileNotFound: The config "
        "profile (no-such-profile) could not be found)"), result.stderr
    assert command.current(empty_url) is None


# Loaded at the start of every door's process (PYTHONPATH): RDS reports the snapshot
# "creating" for as long as the process lives (the StillCreating stand-in, above).
STILL_CREATING = '''
from alquimista_schema.connect import rds

_real = rds.client


class _Creating:
    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def describe_db_cluster_snapshots(self, **kwargs):
        found = self.client.describe_db_cluster_snapshots(**kwargs)
        for item in found["DBClusterSnapshots"]:
            item["Status"] = "creating"
        return found


rds.client = lambda *args, **kwargs: _Creating(_real(*args, **kwargs))
'''


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_snapshot_wait_ends_it_at_once_with_a_final_row_at_every_door(
        door: Door, rds_api: Any, head_url: URL, tmp_path: Path,
        signum: signal.Signals) -> None:
    """Issue 31: SIGTERM while a run waited for its snapshot (30 s between two polls) acted
    as Python's default: the process died, its audit row said "running"."""
    (tmp_path / "sitecustomize.py").write_text(STILL_CREATING)
    running = door.popen("upgrade", head_url, "head", env={
        "PYTHONPATH": str(tmp_path), "SNAPSHOT_BEFORE_UPGRADE": "true",
        "DB_CLUSTER_IDENTIFIER": CLUSTER})

    def waiting() -> None:
        ends = time.monotonic() + 60
        while not snapshots(rds_api):  # the snapshot is asked for: the wait has begun
            assert running.poll() is None, running.communicate()[0]
            assert time.monotonic() < ends, "no snapshot was ever asked for"
            time.sleep(0.1)
        time.sleep(0.5)

    output, took = signalled(running, signum, waiting)
    assert running.returncode != 0, output
    assert took < 5, (took, output)  # not the 30 s poll
    assert f"interrupted by {signum.name} while waiting for the snapshot" in output, output
    with connect(head_url) as conn:  # at the package's head, the corpus pending
        [row] = audit.entries(conn, limit=1)
    assert (row["outcome"], row["error_code"], row["applied"], row["to_revision"]) == (
        "error", "INTERRUPTED", [], HEAD), row
    assert command.current(head_url) == HEAD
