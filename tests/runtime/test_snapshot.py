"""A cluster snapshot before an upgrade changes anything, against moto's RDS over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from alquimista_schema import command
from alquimista_schema.cli import main
from alquimista_schema.connect import rds
from alquimista_schema.connect.database import connect
from alquimista_schema.errors import SnapshotFailed
from alquimista_schema.runtime import audit, snapshot
from alquimista_schema.runtime.run import Run
from tests.support.helpers import Invoke, secret_for

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
                             MasterUsername="admin_user", MasterUserPassword="not-a-secret-1")
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
    assert result.snapshot == "alquimista-schema-base-to-017-req-42"
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
    (written from RDS's documented statuses: creating, then available) reports creating."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_db_cluster_snapshot(self, **kwargs: Any) -> Any:
        return self.real.create_db_cluster_snapshot(**kwargs)

    def describe_db_cluster_snapshots(self, **kwargs: Any) -> Any:
        found = self.real.describe_db_cluster_snapshots(**kwargs)
        for item in found["DBClusterSnapshots"]:
            item["Status"] = "creating"
        return found


def test_a_snapshot_not_ready_in_time_applies_nothing(rds_api: Any, empty_url: URL,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rds, "client", lambda *a, **k: StillCreating(rds_api))
    monkeypatch.setattr(snapshot, "POLL_SECONDS", 0.2)
    with pytest.raises(SnapshotFailed, match="was still creating after"):
        command.upgrade(empty_url, "head", run=Run(snapshot=True, cluster=CLUSTER,
                                                    snapshot_wait=1.0))
    assert command.current(empty_url) is None


@pytest.mark.parametrize(("start", "end", "request_id", "name"), [
    (None, "021", "abc", "alquimista-schema-base-to-021-abc"),
    ("017", "021", "8f0e_1B/x", "alquimista-schema-017-to-021-8f0e-1b-x"),
    ("lead_ingestion", "017", "--a--", "alquimista-schema-lead-ingestion-to-017-a"),
])
def test_snapshot_names_are_what_rds_accepts(start: str | None, end: str, request_id: str,
                                             name: str) -> None:
    assert snapshot.name_for(start, end, request_id) == name


# --- through the doors ----------------------------------------------------------------


def test_the_lambda_snapshots_when_set_and_answers_with_it(
        rds_api: Any, empty_url: URL, invoke: Invoke, make_secret: Callable[..., str]) -> None:
    env = {"SNAPSHOT_BEFORE_UPGRADE": "true", "DB_CLUSTER_IDENTIFIER": CLUSTER}
    answer = invoke({}, secret=make_secret(secret_for(empty_url)), env=env)
    assert answer["status"] == "success", answer
    assert answer["snapshot"].startswith("alquimista-schema-base-to-021-req-")
    assert [s["DBClusterSnapshotIdentifier"] for s in snapshots(rds_api)] == [
        answer["snapshot"]]
    again = invoke({})
    assert (again["status"], "snapshot" in again) == ("noop", False)
    assert len(snapshots(rds_api)) == 1


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
    assert on.stdout.splitlines()[-2:] == [
        f"snapshot: {made['DBClusterSnapshotIdentifier']} (taken before the first revision)",
        "applied 4 revision(s): 017 -> 021"]
    assert made["DBClusterSnapshotIdentifier"].startswith("alquimista-schema-017-to-021-")


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
