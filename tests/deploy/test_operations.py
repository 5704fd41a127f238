"""Migrate on deploy, the snapshot's grants, scheduled checks and IAM auth, in the template;
and the deploy step's handler run against the real runner (PostgreSQL, moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.deploy.test_cdk import (  # noqa: F401 (fixtures)
    FUNCTION,
    Synthesis,
    bundle,
    node,
    synthesized,
)
from tests.deploy.values import (
    CLUSTER_RESOURCE_ID,
    TOPIC_ARN,
    context,
    problems,
)

CLUSTER_ARN = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                 ":rds:us-east-1:123456789012:cluster:aurora-alq-dev"]]}
SNAPSHOTS_ARN = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                   ":rds:us-east-1:123456789012:cluster-snapshot:"
                                   "alquimista-schema-*"]]}


@pytest.fixture
def operations(synthesized: dict[str, Synthesis]) -> Synthesis:  # noqa: F811
    return synthesized["operations"]


@pytest.fixture
def iam(synthesized: dict[str, Synthesis]) -> Synthesis:  # noqa: F811
    return synthesized["iam"]


def logical(each: Synthesis, kind: str, **props: Any) -> str:
    [found] = each.template.find_resources(kind, {"Properties": props} if props else None)
    return str(found)


# --- migrate on deploy --------------------------------------------------------------------


# --- the snapshot before an upgrade -------------------------------------------------------


def test_the_runner_may_snapshot_its_cluster_and_nothing_else(operations: Synthesis) -> None:
    runner = operations.runner()
    assert operations.variables()["DB_CLUSTER_IDENTIFIER"] == "aurora-alq-dev"
    assert operations.variables()["SNAPSHOT_BEFORE_UPGRADE"] == "true"
    role = operations.json["Resources"][runner["Role"]["Fn::GetAtt"][0]]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s for s in statements if "rds:" in json.dumps(s["Action"])] == RDS_STATEMENTS


# What the runner calls on RDS when it may snapshot: the cluster's restore window, the
# snapshot, and deleting its own old snapshots (SNAPSHOT_KEEP): never the cluster, never *.
DESCRIBE_CLUSTER = {"Action": "rds:DescribeDBClusters", "Effect": "Allow",
                    "Resource": CLUSTER_ARN}
RDS_STATEMENTS = [
    DESCRIBE_CLUSTER,
    {"Action": ["rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"], "Effect": "Allow",
     "Resource": [CLUSTER_ARN, SNAPSHOTS_ARN]},
    {"Action": "rds:DescribeDBClusterSnapshots", "Effect": "Allow",
     "Resource": [CLUSTER_ARN, SNAPSHOTS_ARN]},
    {"Action": "rds:DeleteDBClusterSnapshot", "Effect": "Allow", "Resource": SNAPSHOTS_ARN}]


def function_egress(each: Synthesis) -> list[dict[str, Any]]:
    """Every egress rule of the function's group: inline, and the separate resources CDK
    makes for a peer group in the same stack."""
    group = each.group_id("FunctionSecurityGroup")
    own = each.json["Resources"][group["Fn::GetAtt"][0]]["Properties"]
    separate = [{k: v for k, v in p.items() if k != "GroupId"}
                for p in each.properties("AWS::EC2::SecurityGroupEgress")
                if p["GroupId"] == group]
    return [*own["SecurityGroupEgress"], *separate]


POSTGRES = {"Description": "PostgreSQL on the Aurora cluster", "DestinationSecurityGroupId":
            "sg-0c1a2b3c4d5e6f708", "FromPort": 5432, "IpProtocol": "tcp", "ToPort": 5432}
ANY_HTTPS = {"CidrIp": "0.0.0.0/0", "Description": "HTTPS to Secrets Manager", "FromPort": 443,
             "IpProtocol": "tcp", "ToPort": 443}


def test_the_rds_endpoint_admits_the_function(operations: Synthesis) -> None:
    """Egress 443 to the endpoint's group only, described as what it is (allow_from gave it
    the ingress's "HTTPS from ..."); no endpoint key here, so HTTPS to any IPv4 stays."""
    endpoint_sg = operations.group_id("RdsEndpointSecurityGroup")
    operations.template.has_resource_properties("AWS::EC2::VPCEndpoint", {
        "ServiceName": "com.amazonaws.us-east-1.rds", "VpcEndpointType": "Interface",
        "PrivateDnsEnabled": True, "SecurityGroupIds": [endpoint_sg]})
    assert [p for p in operations.properties("AWS::EC2::SecurityGroupIngress")
            if p["GroupId"] == endpoint_sg] == [{
                "Description": "HTTPS from aurora-migrations-runner-dev", "IpProtocol": "tcp",
                "FromPort": 443, "ToPort": 443, "GroupId": endpoint_sg,
                "SourceSecurityGroupId": operations.group_id("FunctionSecurityGroup")}]
    assert function_egress(operations) == [POSTGRES, ANY_HTTPS, {
        "Description": "HTTPS to the RDS API endpoint", "DestinationSecurityGroupId": endpoint_sg,
        "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}]


# --- scheduled drift and verify -----------------------------------------------------------


def test_a_schedule_runs_drift_and_verify_and_an_alarm_watches_them(
        operations: Synthesis) -> None:
    runner = logical(operations, FUNCTION, FunctionName="aurora-migrations-runner-dev")
    [rule] = operations.properties("AWS::Events::Rule")
    assert rule["ScheduleExpression"] == "rate(1 day)"
    assert sorted(json.loads(t["Input"])["action"] for t in rule["Targets"]) == [
        "drift", "verify"]
    for target in rule["Targets"]:
        assert target["Arn"] == {"Fn::GetAtt": [runner, "Arn"]}
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}
        assert "DeadLetterConfig" in target
    operations.template.has_resource_properties("AWS::Lambda::Permission", {
        "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
        "FunctionName": {"Fn::GetAtt": [runner, "Arn"]}})
    operations.template.has_resource_properties("AWS::Logs::MetricFilter", {
        "FilterPattern": '{ ($.step = "drift.found") || ($.error_code = "CHECKSUM_MISMATCH") }',
        "MetricTransformations": [Match.object_like({"MetricName": "DriftFound-dev"})]})
    operations.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "DriftFound-dev", "Threshold": 1, "AlarmActions": [TOPIC_ARN]})


# --- IAM database authentication ----------------------------------------------------------


def test_iam_auth_grants_connect_for_one_user_and_reads_no_secret(iam: Synthesis) -> None:
    role = iam.json["Resources"][iam.runner()["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert role["Policies"][0]["PolicyDocument"]["Statement"] == [{
        "Action": "rds-db:connect", "Effect": "Allow", "Resource": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"},
            f":rds-db:us-east-1:123456789012:dbuser:{CLUSTER_RESOURCE_ID}/migrator"]]}}]
    variables = iam.variables()
    assert (variables["DB_AUTH"], variables["DB_USER"]) == ("iam", "migrator")
    assert "DB_SECRET_ARN" not in variables


# --- what the context refuses about them ------------------------------------------------


@pytest.mark.parametrize(("overrides", "line"), [
    ({"env": "prod"}, "dbClusterIdentifier: the runner snapshots the cluster before each "
                      "upgrade (SNAPSHOT_BEFORE_UPGRADE, on by default in prod)"),
    ({"iamAuth": "true"}, "dbUser: needed with iamAuth=true"),
    ({"iamAuth": "true", "dbUser": "m", "clusterResourceId": CLUSTER_RESOURCE_ID,
      "dbHost": "h.example", "dbName": "d"}, "dbSecretArn: iamAuth=true reads no secret"),
    ({"dbUser": "m"}, "dbUser: only used with iamAuth=true"),
    ({"driftSchedule": "every day"}, "driftSchedule='every day' is not an EventBridge schedule"),
    ({"migrateTarget": "017+1"}, "migrateTarget='017+1' is not a revision id or head"),
    ({"clusterResourceId": "aurora-alq-dev"}, "clusterResourceId='aurora-alq-dev' is not the "
                                              "cluster's resource id"),
    ({"migrateOnDeploy": "yes please"}, "migrateOnDeploy='yes please' is not true or false"),
])
def test_the_context_refuses_what_these_need(tmp_path: Path, overrides: dict[str, Any],
                                             line: str) -> None:
    from tests.deploy.values import make_bundle

    found = problems(context(make_bundle(tmp_path), **overrides))
    assert any(p.startswith(line) for p in found), found
