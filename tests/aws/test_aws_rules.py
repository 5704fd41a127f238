"""AWS's rules, enforced in front of moto: the layer refuses what AWS refuses, as AWS answers.

(a) Every rule of tests/support/aws_rules.py, against moto's server over HTTP: its refused
    examples get AWS's error (code, status, a body botocore parses) and never reach moto;
    its accepted examples go through to moto. The rule's citation is checked against the
    botocore model's own documentation where that is its source.
(b) What the package builds meets those rules, over generated inputs: the snapshot's name
    (runtime.snapshot.name_for) and tags (what runtime/skeleton.py ``_snapshot`` passes).
    The deploy context's names and environment are in tests/deploy/test_aws_rules_context.py.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alquimista_schema.runtime import snapshot
from tests.support import aws_rules
from tests.support.aws_rules import MARK, RULES, Rule
from tests.support.helpers import ROOT

REGION = "sa-east-1"
MODEL_CODE = {"rds": "ValidationError", "cloudformation": "ValidationError"}


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def world(aws: Any, moto_endpoint: str) -> Iterator[dict[str, Any]]:
    """moto with the examples' cluster and secret, and a client per service (each made
    after the layer is installed, as every client in a moto-backed test is)."""
    import boto3
    import requests

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    clients: dict[str, Any] = {
        name: boto3.client(name, endpoint_url=moto_endpoint, region_name=REGION)
        for name in ("rds", "secretsmanager", "lambda", "events", "cloudformation")}
    clients["rds"].create_db_cluster(
        DBClusterIdentifier=aws_rules.CLUSTER, Engine="aurora-postgresql",
        MasterUsername="admin_user", MasterUserPassword="not-a-secret-1")
    clients["secretsmanager"].create_secret(Name=aws_rules.SECRET, SecretString="{}")
    yield clients
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)


def _call(clients: dict[str, Any], rule: Rule, params: dict[str, Any]) -> Any:
    from botocore import xform_name

    return getattr(clients[rule.service], xform_name(rule.operation))(**params)


def _cases(kind: str) -> list[Any]:
    return [pytest.param(rule, params, id=f"{rule}-{i}")
            for rule in RULES for i, params in enumerate(getattr(rule, kind))]


@pytest.mark.parametrize(("rule", "params"), _cases("refused"))
def test_the_layer_refuses_what_the_rule_refuses(world: dict[str, Any], rule: Rule,
                                                 params: dict[str, Any]) -> None:
    """Each rule's own sentence (rule.quote, from rule.source) refuses this example."""
    assert rule.quote
    assert rule.source
    before = len(aws_rules.REFUSED)
    with pytest.raises(ClientError) as caught:
        _call(world, rule, params)
    response = caught.value.response
    assert MARK in response["ResponseMetadata"]["HTTPHeaders"], "moto answered, not the layer"
    # the rule's code; or the model's, where the model states the same constraint
    assert response["Error"]["Code"] in (rule.code, MODEL_CODE.get(rule.service,
                                                                   "ValidationException"))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == rule.status or \
        aws_rules.REFUSED[-1][2].rule == "botocore model"
    assert response["Error"]["Message"]
    assert len(aws_rules.REFUSED) == before + 1


@pytest.mark.parametrize(("rule", "params"), _cases("accepted"))
def test_the_layer_lets_through_what_the_rule_accepts(world: dict[str, Any], rule: Rule,
                                                      params: dict[str, Any]) -> None:
    """What the rule accepts reaches moto (whose own answer, success or not, comes back)."""
    before = len(aws_rules.REFUSED)
    headers: dict[str, str] = {}
    try:
        _call(world, rule, params)
    except ClientError as exc:  # moto's own answer (a function that does not exist, ...)
        headers = exc.response["ResponseMetadata"]["HTTPHeaders"]
    assert MARK not in headers, headers
    assert len(aws_rules.REFUSED) == before


# Where the sentence is the botocore model's own documentation: (service, shape, member).
MODEL_SOURCES = {
    "rds-snapshot-identifier": ("rds", "CreateDBClusterSnapshotMessage",
                                "DBClusterSnapshotIdentifier"),
    "rds-cluster-identifier": ("rds", "CreateDBClusterMessage", "DBClusterIdentifier"),
    "rds-describe-snapshots-one-selector": ("rds", "DescribeDBClusterSnapshotsMessage",
                                            "DBClusterSnapshotIdentifier"),
    "rds-snapshot-type": ("rds", "DescribeDBClusterSnapshotsMessage", "SnapshotType"),
    "rds-describe-snapshots-max-records": ("rds", "DescribeDBClusterSnapshotsMessage",
                                           "MaxRecords"),
    "rds-describe-clusters-max-records": ("rds", "DescribeDBClustersMessage", "MaxRecords"),
    "rds-tag-key": ("rds", "Tag", "Key"),
    "rds-tag-value": ("rds", "Tag", "Value"),
    "lambda-invoke-function-name": ("lambda", "InvocationRequest", "FunctionName"),
    "lambda-invoke-payload": ("lambda", "InvocationRequest", "Payload"),
    "cloudformation-stack-name": ("cloudformation", "CreateStackInput", "StackName"),
}


@pytest.mark.parametrize("name", sorted(MODEL_SOURCES))
def test_a_rule_quoting_the_botocore_model_quotes_it_exactly(name: str) -> None:
    service, shape, member = MODEL_SOURCES[name]
    assert aws_rules.BY_NAME[name].quote in aws_rules.shape_documentation(service, shape, member)


@pytest.mark.parametrize(("service", "shape", "member", "constraint"), [
    ("secretsmanager", "GetSecretValueRequest", "SecretId", {"min": 1, "max": 2048}),
    ("lambda", "InvocationRequest", "FunctionName", {"min": 1, "max": 256}),
    ("lambda", "EnvironmentVariables", None, {"pattern": "[a-zA-Z]([a-zA-Z0-9_])+"}),
    ("events", "PutRuleRequest", "ScheduleExpression", {"max": 256}),
])
def test_the_model_constraints_the_layer_relies_on_are_in_botocore(
        service: str, shape: str, member: str | None, constraint: dict[str, Any]) -> None:
    """The rules marked from_model are enforced from these shapes, generically."""
    import botocore.session

    found: Any = botocore.session.get_session().get_service_model(service).shape_for(shape)
    target = found.members[member] if member else found.key
    assert {k: target.metadata.get(k) for k in constraint} == constraint


def test_every_rule_cites_its_source_and_has_examples_both_ways() -> None:
    for rule in RULES:
        assert rule.source, rule
        assert rule.quote, rule
        assert rule.code, rule
        assert rule.refused, rule
        assert rule.accepted, rule
    assert len(aws_rules.BY_NAME) == len(RULES)  # names are unique


def test_the_package_clients_are_behind_the_layer_and_translate_its_refusal(
        world: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's own RDS client (connect/clients.py, a boto3 Session of its own) gets
    RDS's InvalidParameterValue for a 64-character name, and snapshot.take says so."""
    from alquimista_schema.connect import rds
    from alquimista_schema.errors import SnapshotFailed

    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", moto_endpoint)
    with pytest.raises(SnapshotFailed) as caught:
        snapshot.take(rds.client(REGION), aws_rules.CLUSTER, "a" * 64, tags={
            "project": "alquimista-schema", "from-revision": "base"}, wait_until=0.0)
    assert "InvalidParameterValue" in str(caught.value)
    assert aws_rules.REFUSED[-1][:2] == ("rds", "CreateDBClusterSnapshot")


CHILD = """
import json, sys
loaded = "botocore" in sys.modules
import boto3
from botocore.exceptions import ClientError
client = boto3.client("rds", endpoint_url=sys.argv[1], region_name="sa-east-1")
try:
    client.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="x" * 70,
                                      DBClusterIdentifier=sys.argv[2])
    print(json.dumps({"loaded": loaded, "code": None}))
except ClientError as exc:
    print(json.dumps({"loaded": loaded, "code": exc.response["Error"]["Code"],
                      "marked": "MARK" in exc.response["ResponseMetadata"]["HTTPHeaders"]}))
""".replace('"MARK"', repr(MARK))


def test_a_child_process_runs_behind_the_layer_too(world: dict[str, Any],
                                                   moto_endpoint: str) -> None:
    """The CLI or python -m lambda_entry in a child: the ``aws`` fixture's environment
    (inherited, as tests/support/doors.py passes it) installs the layer there, lazily."""
    done = subprocess.run([sys.executable, "-c", CHILD, moto_endpoint, aws_rules.CLUSTER],
                          cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"loaded": False, "code": "InvalidParameterValue", "marked": True}


# --- (b) what the package builds ------------------------------------------------------------

REVISION = st.none() | st.text(string.ascii_letters + string.digits + "_", min_size=1,
                               max_size=40)
REQUEST_ID = st.uuids().map(str) | st.uuids().map(lambda u: u.hex) | st.text(min_size=1,
                                                                            max_size=300)
SNAPSHOT_ID = aws_rules.BY_NAME["rds-snapshot-identifier"]
TAG_KEY, TAG_VALUE = aws_rules.BY_NAME["rds-tag-key"], aws_rules.BY_NAME["rds-tag-value"]
TAGS = aws_rules.BY_NAME["rds-tags-per-resource"]


@_settings(500)
@given(start=REVISION, end=REVISION, request_id=REQUEST_ID)
def test_the_snapshot_name_meets_rdss_identifier_rule(start: str | None, end: str | None,
                                                      request_id: str) -> None:
    """RDS: "Must contain from 1 to 63 letters, numbers, or hyphens. First character must be
    a letter. Can't end with a hyphen or contain two consecutive hyphens." (the snapshot
    identifier rule; name_for must fit it for any revisions and request id)."""
    name = snapshot.name_for(start, end, request_id)
    assert aws_rules.judge(SNAPSHOT_ID, name) is None, name
    assert name.startswith(snapshot.PREFIX)


def _skeleton_snapshot(start: str | None, end: str | None, request_id: str) -> dict[str, Any]:
    """What runtime/skeleton.py's ``_snapshot`` passes to snapshot.take (its name and tags),
    caught at take, for a run that applies revisions from ``start`` to ``end``."""
    import inspect

    from alquimista_schema.connect import rds
    from alquimista_schema.runtime import skeleton

    seen: dict[str, Any] = {}

    def take(client: Any, cluster: str, name: str, **kwargs: Any) -> str:
        seen.update(kwargs, cluster=cluster, name=name)
        return name

    route = SimpleNamespace(steps=[object()], start=start, end=end)
    run = SimpleNamespace(snapshot=True, cluster=aws_rules.CLUSTER, snapshot_wait=60.0,
                          remaining=lambda: None, request_id=request_id)
    progress = SimpleNamespace(snapshot=None)
    arguments: dict[str, Any] = {"conn": None, "route": route, "run": run, "progress": progress,
                                 "stopping": threading.Event()}
    wanted = inspect.signature(skeleton._snapshot).parameters
    with mock.patch.object(snapshot, "take", take), \
            mock.patch.object(rds, "client", return_value=None):
        skeleton._snapshot(**{k: v for k, v in arguments.items() if k in wanted})
    return seen


@_settings(100)  # each example patches and runs the skeleton's step: ~0.1 s
@given(start=REVISION, end=REVISION, request_id=REQUEST_ID)
def test_the_snapshots_name_and_tags_as_the_run_builds_them_meet_rdss_rules(
        start: str | None, end: str | None, request_id: str) -> None:
    """RDS Tag: "The string value can be from 1 to 128 Unicode characters in length and
    can't be prefixed with aws: or rds: ..." (keys; values up to 256), the Unicode pattern,
    and "A tag set can contain as many as 50 tags"."""
    seen = _skeleton_snapshot(start, end, request_id)
    assert aws_rules.judge(SNAPSHOT_ID, seen["name"]) is None, seen["name"]
    tags = [{"Key": k, "Value": v} for k, v in seen["tags"].items()]
    assert aws_rules.judge(TAGS, tags) is None
    for tag in tags:
        assert aws_rules.judge(TAG_KEY, tag["Key"]) is None, tag
        assert aws_rules.judge(TAG_VALUE, tag["Value"]) is None, tag
    # and the whole call, as the layer judges it (the model and every RDS rule)
    assert aws_rules.refusal("rds", "CreateDBClusterSnapshot", {
        "DBClusterSnapshotIdentifier": seen["name"], "DBClusterIdentifier": seen["cluster"],
        "Tags": tags}) is None


def test_the_snapshot_layer_catches_what_moto_let_through_before() -> None:
    """The names of before the fix (up to 255 characters): RDS refuses the long ones."""
    old = f"{snapshot.PREFIX}base-to-021-{uuid.UUID(int=0)}"  # 66 characters, as before
    assert len(old) > 63
    assert aws_rules.refusal("rds", "CreateDBClusterSnapshot", {
        "DBClusterSnapshotIdentifier": old, "DBClusterIdentifier": aws_rules.CLUSTER}) \
        is not None
