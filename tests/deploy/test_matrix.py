"""The app synthesized over a matrix of contexts: every flag on and off, dev and prod, each
network route, each way to authenticate. Not the power set (tens of thousands of stacks):
a pairwise covering set, so every two settings of any two keys meet in at least one stack,
and each stack passes cfn-lint (no error), cdk-nag (acknowledgements exact) and the
template facts below. One node process serves every synthesis.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from alquimista_deploy import checks
from alquimista_deploy.context import ContextError, from_context

from tests.deploy.test_cdk import (  # noqa: F401 (fixtures)
    Synthesis,
    bundle,
    node,
    operations_acknowledged,
    synthesize,
)
from tests.deploy.test_operations import (
    ANY_HTTPS,
    DESCRIBE_CLUSTER,
    POSTGRES,
    RDS_STATEMENTS,
    function_egress,
)
from tests.deploy.values import (
    ACKNOWLEDGED,
    CLUSTER_RESOURCE_ID,
    ENDPOINT_SG,
    KEY_ARN,
    TOPIC_ARN,
    context,
)

RDS_SECRET = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:"
              "rds!cluster-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-Ab12Cd")
# key group -> its settings, each the context (and extraEnvironment) it stands for.
Level = dict[str, Any]
FACTORS: dict[str, dict[str, Level]] = {
    "env": {"dev": {}, "prod": {"env": "prod"}},
    "network": {"open": {}, "endpoint": {"createSecretsManagerEndpoint": "true"},
                "existing": {"secretsManagerEndpointSecurityGroupId": ENDPOINT_SG}},
    "rds": {"none": {}, "endpoint": {"createRdsEndpoint": "true"},
            "nat": {"rdsApiThroughNat": "true"}},
    "cluster": {"absent": {}, "named": {"dbClusterIdentifier": "aurora-alq-dev"}},
    "snapshot": {"default": {}, "on": {"extra": {"SNAPSHOT_BEFORE_UPGRADE": "true"}},
                 "off": {"extra": {"SNAPSHOT_BEFORE_UPGRADE": "false"}}},
    "extension": {"off": {}, "on": {"secretsExtension": "true"}},
    "alarm": {"absent": {}, "topic": {"alarmTopicArn": TOPIC_ARN},
              "none": {"alarmTopicArn": "none"}},
    "deploy": {"off": {}, "on": {"migrateOnDeploy": "true", "migrateTarget": "head"}},
    "drift": {"off": {}, "rate": {"driftSchedule": "rate(6 hours)"},
              "cron": {"driftSchedule": "cron(0 3 ? * MON-FRI *)"}},
    "auth": {"secret": {}, "kms": {"secretKmsKeyArn": KEY_ARN},
             "rds-managed": {"dbSecretArn": RDS_SECRET},
             "iam": {"iamAuth": "true", "dbUser": "migrator", "dbSecretArn": "",
                     "clusterResourceId": CLUSTER_RESOURCE_ID,
                     "extra": {"DB_SSLROOTCERT": "/opt/rds-ca.pem"}}},
    "concurrency": {"default": {}, "five": {"reservedConcurrency": "5"},
                    "none": {"reservedConcurrency": "none"}},
    "timeout": {"default": {}, "long": {"functionTimeout": "900",
                                        "extra": {"SNAPSHOT_WAIT_SECONDS": "600"}}},
    "database": {"secret's": {}, "given": {
        "dbHost": "writer.cluster-x.us-east-1.rds.amazonaws.com", "dbPort": "6543",
        "dbName": "alquimista"}},
}
Pair = tuple[tuple[str, str], tuple[str, str]]
# The pairs no valid context holds, each refused by a check of the context (and why).
IMPOSSIBLE: dict[Pair, str] = {
    (("env", "prod"), ("alarm", "absent")): "prod chooses an alarm topic, or none",
    (("network", "open"), ("rds", "nat")): "NAT egress is only for an endpoint key",
    (("rds", "nat"), ("cluster", "absent")): "NAT egress is only for the RDS API's calls",
    (("cluster", "absent"), ("snapshot", "on")): "a snapshot names its cluster",
    (("auth", "rds-managed"), ("database", "secret's")): "RDS's secret has no host",
    (("auth", "iam"), ("database", "secret's")): "IAM tokens are signed for a host",
}
ORDER = list(FACTORS)
TRIES = 40
SEED = 27  # the issue's number: the matrix is the same on every run


def values_of(row: dict[str, str], code: Path) -> dict[str, Any]:
    """The context a row of the matrix stands for."""
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for factor, level in row.items():
        settings = dict(FACTORS[factor][level])
        extra.update(settings.pop("extra", {}))
        values.update(settings)
    return context(code, **values, extraEnvironment=json.dumps(extra))


def pairs_of(row: dict[str, str]) -> set[Pair]:
    return {((a, row[a]), (b, row[b])) for a, b in combinations(FACTORS, 2)}


def valid(row: dict[str, str], code: Path) -> bool:
    try:
        from_context(values_of(row, code))
    except ContextError:
        return False
    return True


def covering_rows(code: Path) -> tuple[list[dict[str, str]], set[Pair]]:
    """Rows until every feasible pair is in one (greedy, seeded): for each pair not yet
    covered, the valid row that covers the most new pairs among TRIES greedy completions
    and the rows so far with the pair put in (and one more setting changed). Returns the
    rows and the pairs no row could hold."""
    rng = random.Random(SEED)
    uncovered = {((a, la), (b, lb)) for a, b in combinations(FACTORS, 2)
                 for la in FACTORS[a] for lb in FACTORS[b]}
    infeasible: set[Pair] = set()
    rows: list[dict[str, str]] = []
    while uncovered:
        target = min(uncovered)
        candidates = [row for row in (_complete(target, uncovered, rng) for _ in range(TRIES))
                      if valid(row, code)] or [row for row in _repairs(target, rows)
                                               if valid(row, code)]
        if not candidates:
            infeasible.add(target)
            uncovered.discard(target)
            continue
        best = max(candidates, key=lambda row: len(pairs_of(row) & uncovered))
        rows.append(best)
        uncovered -= pairs_of(best)
    return rows, infeasible


def _complete(target: Pair, uncovered: set[Pair], rng: random.Random) -> dict[str, str]:
    """A row holding ``target``, each other factor set (in random order) to the level that
    covers the most uncovered pairs with those already set, ties broken at random."""
    row = dict(target)
    for factor in rng.sample(ORDER, len(ORDER)):
        if factor not in row:
            row[factor] = max(FACTORS[factor], key=lambda level: rng.random() + sum(
                _pair((factor, level), (f, row[f])) in uncovered for f in row))
    return {f: row[f] for f in FACTORS}


def _repairs(target: Pair, rows: list[dict[str, str]]) -> Iterator[dict[str, str]]:
    """Rows so far (and the first setting of each group) with ``target`` put in, as they
    are and with one other group's setting changed: the completions a constraint across
    three groups leaves (prod needs an alarm choice, an endpoint key a route...)."""
    for base in [{f: next(iter(FACTORS[f])) for f in FACTORS}, *rows]:
        row = base | dict(target)
        yield row
        for factor in ORDER:
            if factor not in dict(target):
                yield from (row | {factor: level} for level in FACTORS[factor])


def _pair(one: tuple[str, str], other: tuple[str, str]) -> Pair:
    """Two settings in the matrix's order of key groups (as pairs_of gives them)."""
    return (one, other) if ORDER.index(one[0]) < ORDER.index(other[0]) else (other, one)


@pytest.fixture(scope="module")
def matrix(node: str, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
           bundle: Path) -> list[Synthesis]:  # noqa: F811
    rows, infeasible = covering_rows(bundle)
    assert infeasible == set(IMPOSSIBLE)  # each left out by a check, and only those
    assert len(rows) <= 30  # ~4 s of synthesis each
    print(f"matrix: {len(rows)} contexts cover every feasible pair of "
          f"{len(FACTORS)} key groups ({len(infeasible)} pairs impossible)")
    return [synthesize(tmp_path_factory.mktemp(f"row{i}"), values_of(row, bundle))
            for i, row in enumerate(rows)]


def test_cfn_lint_finds_no_error_across_the_matrix(matrix: list[Synthesis]) -> None:
    from cfnlint.api import lint

    errors, warnings = [], set()
    for each in matrix:
        for m in lint(json.dumps(each.json), regions=[each.ctx.region]):
            line = f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
            (errors.append(line) if m.rule.id.startswith("E") else warnings.add(line))
    print(f"cfn-lint over {len(matrix)} templates: {len(errors)} errors, "
          f"{len(warnings)} distinct warnings" + "".join(f"\n  {w}" for w in sorted(warnings)))
    assert errors == []


def test_cdk_nag_acknowledgements_are_exact_across_the_matrix(matrix: list[Synthesis]) -> None:
    for each in matrix:
        [nag] = [r for r in each.read("validation-report.json")["pluginReports"]
                 if r["pluginName"] == "AwsSolutions"]
        assert (nag["conclusion"], nag["violations"]) == ("success", [])
        assert {s["ruleName"] for s in nag["suppressedViolations"]} == \
            ACKNOWLEDGED | operations_acknowledged(each)


def test_the_function_is_what_the_context_says(matrix: list[Synthesis]) -> None:
    for each in matrix:
        runner = each.runner()
        assert runner.get("ReservedConcurrentExecutions") == each.ctx.reserved_concurrency
        assert runner["Timeout"] == each.ctx.function_timeout
        alarms = [p for p in each.properties("AWS::CloudWatch::Alarm")
                  if "AlarmActions" in p]
        assert len(alarms) == (0 if not each.ctx.alarm_topic_arn else
                               len(each.properties("AWS::CloudWatch::Alarm")))


def test_the_rds_grants_are_the_runners_calls_only(matrix: list[Synthesis]) -> None:
    from alquimista_deploy import operations

    for each in matrix:
        role = each.json["Resources"][each.runner()["Role"]["Fn::GetAtt"][0]]["Properties"]
        rds = [s for s in role["Policies"][0]["PolicyDocument"]["Statement"]
               if "rds:" in json.dumps(s["Action"])]
        expected = RDS_STATEMENTS if operations.snapshots(each.ctx) else \
            [DESCRIBE_CLUSTER] if each.ctx.db_cluster_identifier else []
        assert rds == expected, each.ctx
        assert "*" not in [s["Resource"] for s in rds]


def test_https_goes_out_only_where_the_context_says(matrix: list[Synthesis]) -> None:
    """No endpoint key: HTTPS to any IPv4 (the RDS API too). With one: the endpoint's group,
    plus the RDS endpoint's group or, with rdsApiThroughNat, 0.0.0.0/0 (NAT)."""
    for each in matrix:
        ctx = each.ctx
        wide = [r for r in function_egress(each) if r.get("CidrIp") == "0.0.0.0/0"]
        endpoint_key = ctx.create_secrets_manager_endpoint or bool(
            ctx.secrets_manager_endpoint_security_group_id)
        assert [r["Description"] for r in wide] == (
            ["HTTPS to the RDS API's public endpoint through the subnets' NAT gateway"]
            if ctx.rds_api_through_nat else [] if endpoint_key else ["HTTPS to Secrets Manager"])
        assert all(r["FromPort"] == r["ToPort"] == 443 for r in wide)


def named(matrix: list[Synthesis], **want: Any) -> Synthesis:
    """The first stack of the matrix whose context has these values."""
    return next(each for each in matrix
                if all(getattr(each.ctx, k) == v for k, v in want.items()))


def test_nat_egress_is_exactly_443_to_any_ipv4(matrix: list[Synthesis]) -> None:
    each = named(matrix, rds_api_through_nat=True, create_secrets_manager_endpoint=True)
    endpoint_sg = each.group_id("SecretsManagerEndpointSecurityGroup")
    port = each.ctx.database_port
    assert sorted(function_egress(each), key=json.dumps) == sorted([
        POSTGRES | {"FromPort": port, "ToPort": port},
        {"CidrIp": "0.0.0.0/0", "Description": checks.NAT_EGRESS, "FromPort": 443,
         "IpProtocol": "tcp", "ToPort": 443},
        {"Description": "HTTPS to the Secrets Manager endpoint", "DestinationSecurityGroupId":
         endpoint_sg, "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}], key=json.dumps)


def test_with_both_endpoints_https_goes_to_them_only(matrix: list[Synthesis]) -> None:
    each = named(matrix, create_rds_endpoint=True, create_secrets_manager_endpoint=True)
    port = each.ctx.database_port
    groups = {name: each.group_id(f"{name}EndpointSecurityGroup")
              for name in ("SecretsManager", "Rds")}
    assert sorted(function_egress(each), key=json.dumps) == sorted([
        POSTGRES | {"FromPort": port, "ToPort": port},
        {"Description": "HTTPS to the Secrets Manager endpoint",
         "DestinationSecurityGroupId": groups["SecretsManager"], "FromPort": 443,
         "IpProtocol": "tcp", "ToPort": 443},
        {"Description": "HTTPS to the RDS API endpoint", "DestinationSecurityGroupId":
         groups["Rds"], "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}], key=json.dumps)
    assert ANY_HTTPS not in function_egress(each)
