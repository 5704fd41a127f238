"""The CDK app in deploy/cdk rules out, in the template it synthesizes, each way the old runner's
first deployment failed (docs/CONTEXT.md), and the template passes cfn-lint and cdk-nag.

aws-cdk-lib runs in node (jsii): tests that synthesize take the ``node`` fixture, which skips
without node, except under CI=true where a missing node is a failure. The context tests are
plain Python. Each template is synthesized once per module, the way ``cdk synth`` would.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alquimista_deploy import operations, spec
from alquimista_deploy.context import ContextError, DeployContext, from_context
from alquimista_deploy.formats import BUNDLE_COMMAND
from alquimista_deploy.validated import check_environment

from tests.deploy.values import (
    ACKNOWLEDGED,
    CDK_APP,
    CLUSTER_SG,
    CONTEXT,
    ENDPOINT_SG,
    FULL,
    IAM,
    KEY_ARN,
    OPERATIONS,
    RESERVED,
    ROOT,
    SECRET_ARN,
    SUBNETS,
    TAGS,
    TOPIC_ARN,
    context,
    make_bundle,
    problems,
)
from tests.support.helpers import missing

# aws-cdk-lib starts node when imported. Without node these names stay undefined and every
# test that needs them stops in the `node` fixture first (a skip, or under CI=true a failure).
if shutil.which("node") is not None:
    import aws_cdk as cdk
    from alquimista_deploy.stack import RunnerStack, define
    from aws_cdk.assertions import Annotations, Match, Template


# --- context: plain Python -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle"))


def test_missing_keys_are_named_in_one_error_with_an_example() -> None:
    with pytest.raises(ContextError) as caught:
        from_context({"env": "dev", "subnetIds": ""})
    message = str(caught.value)
    assert "\n  missing CDK context: account, region, vpcId, subnetIds, clusterSecurityGroupId, " \
           "dbSecretArn\n" in message
    assert "npx aws-cdk@2 deploy -c env=dev -c account=" in message


@pytest.mark.parametrize(("overrides", "says"), [
    ({"vpcId": "my-vpc"}, "vpcId='my-vpc' is not a VPC id"),
    ({"subnetIds": "subnet-0a1b,private-a"}, "subnetIds must be subnet ids"),
    ({"dbSecretArn": "aurora"}, "not its name"),
    ({"createSecretsManagerEndpoint": "maybe"}, "'maybe' is not true or false"),
    ({"dbPort": "70000"}, "dbPort='70000' is not a port"),
    ({"extraEnvironment": '{"DB_SECRET_ARN": "x"}'}, "DB_SECRET_ARN come from their own keys"),
    ({"createSecretsManagerEndpoint": True, "secretsManagerEndpointSecurityGroupId": ENDPOINT_SG},
     "exclude each other"),
])
def test_malformed_context_is_refused(bundle: Path, overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(ContextError, match=re.escape(says)):
        from_context(context(bundle, **overrides))


def test_every_problem_is_reported_at_once(bundle: Path) -> None:
    assert len(problems(context(bundle, vpcId="my-vpc", dbPort="x", secretsExtension="2"))) == 3


def test_missing_bundle_names_the_bundle_command(tmp_path: Path) -> None:
    with pytest.raises(ContextError) as caught:
        from_context(CONTEXT, root=tmp_path)  # no bundle key: the default path
    message = str(caught.value)
    assert str(tmp_path / spec.DEFAULT_BUNDLE) in message
    assert BUNDLE_COMMAND in message
    assert "alquimista-schema bundle --python 3.12 --arch x86_64 --output dist/runner.zip" \
        in message


@pytest.mark.parametrize("subnets", [",".join(SUBNETS), " , ".join(SUBNETS), json.dumps(SUBNETS),
                                     SUBNETS])
def test_subnet_ids_as_a_list_or_comma_separated(bundle: Path, subnets: Any) -> None:
    assert from_context(context(bundle, subnetIds=subnets)).subnet_ids == tuple(SUBNETS)


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_environment_names_are_refused(bundle: Path, name: str) -> None:
    """Old failure 2: AWS_REGION set by the deployer. Refused before any template exists."""
    with pytest.raises(ContextError, match=re.escape(name)):
        check_environment({name: "x"})
    extra = json.dumps({name: "us-east-1"})
    with pytest.raises(ContextError, match=r"cannot be set: Lambda('s key pattern| reserves)"):
        from_context(context(bundle, extraEnvironment=extra))


def test_function_environment_is_what_the_runner_reads(bundle: Path) -> None:
    ctx = from_context(context(bundle, **FULL))
    assert ctx.function_environment() == {
        "DB_SECRET_ARN": SECRET_ARN, "ENVIRONMENT": "dev", "LOCK_WAIT_SECONDS": "30",
        "DB_HOST": FULL["dbHost"], "DB_PORT": "6543", "DB_NAME": "alquimista"}


# --- the synthesized template ---------------------------------------------------------------

FUNCTION, INGRESS = "AWS::Lambda::Function", "AWS::EC2::SecurityGroupIngress"


@dataclass(frozen=True)
class Synthesis:
    """One synthesized app: its context, stack, template (as assertions and as JSON), folder."""

    ctx: DeployContext
    stack: RunnerStack
    template: Template
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def properties(self, kind: str) -> list[dict[str, Any]]:
        return [r["Properties"] for r in self.template.find_resources(kind).values()]

    def runner(self) -> dict[str, Any]:
        """The runner function's properties (the deploy step adds functions of its own)."""
        [function] = [f for f in self.properties(FUNCTION)
                      if f.get("FunctionName") == self.ctx.function_name]
        return function

    def variables(self) -> dict[str, str]:
        return dict(self.runner()["Environment"]["Variables"])

    def group_id(self, construct_id: str) -> dict[str, Any]:
        """``Fn::GetAtt`` of a security group this stack makes."""
        element = self.stack.node.find_child(construct_id).node.default_child
        assert isinstance(element, cdk.CfnElement)
        return {"Fn::GetAtt": [self.stack.resolve(self.stack.get_logical_id(element)), "GroupId"]}

    def read(self, name: str) -> dict[str, Any]:
        """A JSON file of the cloud assembly."""
        return dict(json.loads((self.outdir / name).read_text()))


@pytest.fixture(scope="session")
def node() -> str:
    """aws-cdk-lib needs node; missing under CI=true is a failure, elsewhere a skip."""
    found = shutil.which("node")
    if found is None:
        why = "aws-cdk-lib runs in node (jsii) and there is no `node` on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI=true, so this is a failure, not a skip")
        pytest.skip(why)
    return found


def synthesize(folder: Path, values: dict[str, Any]) -> Synthesis:
    """Synthesize the app as app.py does (define, then synth), into ``folder``."""
    app = cdk.App(outdir=str(folder / "cdk.out"), context=values)
    stack = define(app)
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag stops synthesis: name each finding
        report = folder / "cdk.out" / "validation-report.json"
        if "ValidationFailed" not in str(exc) or not report.is_file():
            raise
        findings = [f"{v['ruleName']} on {c['constructPath']}"
                    for plugin in json.loads(report.read_text())["pluginReports"]
                    for v in plugin["violations"] for c in v["violatingConstructs"]]
        pytest.fail("unacknowledged cdk-nag findings:\n  " + "\n  ".join(findings))
    return Synthesis(stack.ctx, stack, Template.from_stack(stack), folder / "cdk.out")


VARIANTS: dict[str, dict[str, Any]] = {
    "minimal": {}, "full": FULL, "existing": {"secretsManagerEndpointSecurityGroupId": ENDPOINT_SG},
    "operations": OPERATIONS, "iam": IAM}


@pytest.fixture(scope="module")
def synthesized(node: str, tmp_path_factory: pytest.TempPathFactory,
                bundle: Path) -> dict[str, Synthesis]:
    """Each variant synthesized once for the module (one node process serves them all)."""
    return {name: synthesize(tmp_path_factory.mktemp(name), context(bundle, **overrides))
            for name, overrides in VARIANTS.items()}


@pytest.fixture(params=list(VARIANTS))
def each(request: pytest.FixtureRequest, synthesized: dict[str, Synthesis]) -> Synthesis:
    return synthesized[request.param]


@pytest.fixture
def minimal(synthesized: dict[str, Synthesis]) -> Synthesis:
    return synthesized["minimal"]


@pytest.fixture
def full(synthesized: dict[str, Synthesis]) -> Synthesis:
    return synthesized["full"]


def walk(value: Any) -> Iterator[Any]:
    """Every dict, list and scalar inside a JSON value."""
    yield value
    children = value.values() if isinstance(value, dict) else value \
        if isinstance(value, list) else []
    for child in children:
        yield from walk(child)


def test_code_is_the_prebuilt_zip_nothing_is_built(each: Synthesis, bundle: Path) -> None:
    """Old failure 1: bundling needed Docker. The code is the zip as given: nothing is built."""
    each.template.has_resource_properties(FUNCTION, {
        "Code": {"S3Key": Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$")}})
    assets = each.read(f"{each.stack.artifact_id}.assets.json")
    assert assets["dockerImages"] == {}
    [asset] = [a for a in assets["files"].values() if a["source"]["path"].startswith("asset.")
               and (each.outdir / a["source"]["path"]).is_file()]
    assert asset["source"]["packaging"] == "file"  # uploaded as is, not zipped from a folder
    assert (each.outdir / asset["source"]["path"]).read_bytes() == bundle.read_bytes()


def test_environment_has_no_reserved_name(each: Synthesis) -> None:
    """Old failure 2: AWS_REGION in the function's environment (a reserved name)."""
    variables = each.variables()
    assert not [name for name in variables if name.upper().startswith(("AWS_", "LAMBDA_", "_"))]
    assert (variables.get("DB_SECRET_ARN"), variables["ENVIRONMENT"]) == (
        each.ctx.db_secret_arn, "dev")


def test_subnets_are_used_as_given_nothing_looked_up(each: Synthesis) -> None:
    """Old failure 3: PRIVATE_WITH_EGRESS asked of a VPC that only had isolated subnets."""
    each.template.has_resource_properties(FUNCTION, {"VpcConfig": {
        "SubnetIds": SUBNETS, "SecurityGroupIds": [each.group_id("FunctionSecurityGroup")]}})
    for kind in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway"):
        each.template.resource_count_is(kind, 0)
    assert "missing" not in each.read("manifest.json")  # no lookup: synth needs no credentials
    assert "Fn::GetAZs" not in json.dumps(each.json)


def test_cluster_ingress_rule_is_in_this_stack(each: Synthesis) -> None:
    """Old failure 4: the rule made a cycle between stacks and was added by hand."""
    port = each.ctx.database_port
    function_sg = each.group_id("FunctionSecurityGroup")
    each.template.has_resource_properties(INGRESS, {
        "GroupId": CLUSTER_SG, "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "SourceSecurityGroupId": function_sg})
    each.template.has_resource_properties("AWS::EC2::SecurityGroup", {
        "SecurityGroupEgress": Match.array_with([{
            "DestinationSecurityGroupId": CLUSTER_SG, "IpProtocol": "tcp", "FromPort": port,
            "ToPort": port, "Description": "PostgreSQL on the Aurora cluster"}])})
    assert "Fn::ImportValue" not in json.dumps(each.json)
    assert not any("Export" in output for output in each.json.get("Outputs", {}).values())
    stacks = [a for a in each.read("manifest.json")["artifacts"].values()
              if a["type"] == "aws:cloudformation:stack"]
    assert [s.get("dependencies") for s in stacks] == [[f"{each.stack.artifact_id}.assets"]]


def test_tags_have_one_spelling_per_key(each: Synthesis) -> None:
    """Old failure 5: `project` and `Project` on one role, which IAM refused."""
    stack_tags = each.read("manifest.json")["artifacts"][each.stack.artifact_id]["properties"]
    assert stack_tags["tags"] == TAGS  # CloudFormation copies stack tags onto its resources
    spellings: defaultdict[str, set[str]] = defaultdict(set, {k.lower(): {k} for k in TAGS})
    for item in walk(each.json):
        if isinstance(item, dict) and isinstance(item.get("Tags"), list):
            keys = [tag["Key"] for tag in item["Tags"]]
            assert len({key.lower() for key in keys}) == len(keys), keys
            for key in keys:
                spellings[key.lower()].add(key)
    assert {key: names for key, names in spellings.items() if len(names) > 1} == {}
    for kind in (FUNCTION, "AWS::IAM::Role", "AWS::EC2::SecurityGroup", "AWS::Logs::LogGroup",
                 "AWS::CloudWatch::Alarm", "AWS::SQS::Queue"):
        for properties in each.properties(kind):
            assert {t["Key"]: t["Value"] for t in properties["Tags"]} == TAGS, kind


def test_handler_is_the_bundles_entry_point(each: Synthesis) -> None:
    """Old failures 6 and 7 live in the bundle (tests/tooling/test_bundle.py); here, its
    entry point."""
    from alquimista_schema.tooling import bundle as bundle_module

    assert spec.HANDLER == bundle_module.HANDLER
    module, _, name = spec.HANDLER.rpartition(".")
    source = ROOT / (module.replace(".", "/") + ".py")  # bundle copies lambda_entry/ to the root
    assert f"def {name}(" in source.read_text()
    each.template.has_resource_properties(FUNCTION, {
        "Handler": spec.HANDLER, "Runtime": spec.RUNTIME, "Architectures": [spec.ARCHITECTURE],
        "Timeout": spec.TIMEOUT_SECONDS, "ReservedConcurrentExecutions": spec.RESERVED_CONCURRENCY,
        "FunctionName": "aurora-migrations-runner-dev"})
    each.template.has_resource_properties("AWS::Lambda::EventInvokeConfig",
                                          {"MaximumRetryAttempts": 0})


def runner_role(each: Synthesis) -> tuple[str, dict[str, Any]]:
    """The runner's role (the deploy step's functions have roles of their own)."""
    [arn] = [each.runner()["Role"]["Fn::GetAtt"][0]]
    return arn, each.json["Resources"][arn]["Properties"]


def test_role_reads_exactly_the_one_secret(each: Synthesis) -> None:
    logical, role = runner_role(each)
    decrypt = [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN, "Condition": {
        "StringEquals": {"kms:ViaService": {"Fn::Join": ["", [
            "secretsmanager.us-east-1.", {"Ref": "AWS::URLSuffix"}]]}}}}]
    secret = [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
               "Resource": SECRET_ARN}] if each.ctx.db_secret_arn else []
    [policy] = role["Policies"]
    assert policy["PolicyName"] == "WhatTheRunnerCalls"
    statements = policy["PolicyDocument"]["Statement"]
    def rds(statement: dict[str, Any]) -> bool:
        actions = statement["Action"] if isinstance(statement["Action"], list) \
            else [statement["Action"]]
        return all(a.startswith(("rds:", "rds-db:")) for a in actions)

    assert [s for s in statements if not rds(s)] == [
        *secret, *(decrypt if each.ctx.secret_kms_key_arn else [])]
    assert json.dumps(role["ManagedPolicyArns"]).endswith(
        ':iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]]}]')
    # The one other grant: CDK's, for the dead-letter queue (failed asynchronous invocations).
    [grant] = [p for p in each.properties("AWS::IAM::Policy") if p["Roles"] == [{"Ref": logical}]]
    [queue] = each.template.find_resources("AWS::SQS::Queue")
    assert grant["PolicyDocument"]["Statement"] == [{
        "Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue, "Arn"]}}]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"}


def test_secrets_manager_endpoint_admits_the_function(full: Synthesis) -> None:
    """Old failure 8: Secrets Manager unreachable until the endpoint's group admitted it."""
    endpoint_sg = full.group_id("SecretsManagerEndpointSecurityGroup")
    function_sg = full.group_id("FunctionSecurityGroup")
    full.template.has_resource_properties("AWS::EC2::VPCEndpoint", {
        "ServiceName": "com.amazonaws.us-east-1.secretsmanager", "VpcEndpointType": "Interface",
        "PrivateDnsEnabled": True, "SubnetIds": SUBNETS, "SecurityGroupIds": [endpoint_sg]})
    full.template.has_resource_properties(INGRESS, {
        "GroupId": endpoint_sg, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "SourceSecurityGroupId": function_sg})
    full.template.has_resource_properties("AWS::EC2::SecurityGroupEgress", {
        "GroupId": function_sg, "DestinationSecurityGroupId": endpoint_sg, "FromPort": 443})


def test_an_existing_endpoint_admits_the_function(synthesized: dict[str, Synthesis]) -> None:
    """Old failure 8 again, for the VPC's own endpoint: the rule on its group is made here."""
    existing = synthesized["existing"]
    existing.template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    existing.template.has_resource_properties(INGRESS, {
        "GroupId": ENDPOINT_SG, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "SourceSecurityGroupId": existing.group_id("FunctionSecurityGroup")})
    [group] = existing.properties("AWS::EC2::SecurityGroup")
    assert [(e.get("DestinationSecurityGroupId"), e.get("CidrIp"))
            for e in group["SecurityGroupEgress"] if e["FromPort"] == 443] == [(ENDPOINT_SG, None)]


def test_without_an_endpoint_https_is_allowed_out(minimal: Synthesis) -> None:
    minimal.template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    minimal.template.has_resource_properties("AWS::EC2::SecurityGroup", {
        "SecurityGroupEgress": Match.array_with([{
            "CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "Description": "HTTPS to Secrets Manager"}])})


def test_optional_database_settings(full: Synthesis, minimal: Synthesis) -> None:
    assert {k: full.variables()[k] for k in ("DB_HOST", "DB_PORT", "DB_NAME")} == {
        "DB_HOST": FULL["dbHost"], "DB_PORT": "6543", "DB_NAME": "alquimista"}
    assert not {"DB_HOST", "DB_PORT", "DB_NAME"} & set(minimal.variables())


def test_secrets_extension_layer_and_settings(full: Synthesis, minimal: Synthesis) -> None:
    full.template.has_resource_properties(FUNCTION, {"Layers": [Match.string_like_regexp(
        r"^arn:aws:lambda:us-east-1:\d{12}:layer:AWS-Parameters-and-Secrets-Lambda-Extension:\d+$"
    )]})
    assert full.variables()["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] == "2773"
    assert full.variables()["SECRETS_MANAGER_TTL"] == "300"
    minimal.template.has_resource_properties(FUNCTION, {"Layers": Match.absent()})
    assert not [n for n in minimal.variables()
                if n.startswith(("PARAMETERS_SECRETS_", "SECRETS_MANAGER_"))]


def test_log_group_is_explicit_with_retention(each: Synthesis) -> None:
    groups = each.template.find_resources("AWS::Logs::LogGroup",
                                          {"Properties": {"RetentionInDays": 30}})
    assert each.runner()["LoggingConfig"]["LogGroup"]["Ref"] in groups
    assert len(groups) == len(each.template.find_resources("AWS::Logs::LogGroup"))


def test_failed_asynchronous_invocations_land_in_a_dead_letter_queue(each: Synthesis) -> None:
    """checkov's CKV_AWS_116: a schedule invokes asynchronously; a timeout or crash (retries
    0) is kept 14 days, encrypted, behind TLS, and raises an alarm."""
    [queue] = each.template.find_resources("AWS::SQS::Queue", {"Properties": {
        "SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}})
    each.template.has_resource_properties(FUNCTION, {"DeadLetterConfig": {
        "TargetArn": {"Fn::GetAtt": [queue, "Arn"]}}})
    each.template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Action": "sqs:*", "Condition": {
                "Bool": {"aws:SecureTransport": "false"}}})])}})
    actions = [TOPIC_ARN] if each.ctx.alarm_topic_arn else Match.absent()
    each.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
        "Threshold": 1, "AlarmActions": actions})


def test_the_environment_measured_is_the_one_deployed(each: Synthesis) -> None:
    """The 4 KB check measures ctx.deployed_environment(): the template's, layer's included."""
    assert each.variables() == each.ctx.deployed_environment()


def test_failed_answers_raise_the_alarm(each: Synthesis) -> None:
    from alquimista_schema.aws.runner import JsonLog

    each.template.has_resource_properties("AWS::Logs::MetricFilter", {
        "FilterPattern": '{ ($.error_code = "INTERNAL_ERROR") || '
                         '($.error_code = "MIGRATION_FAILED") || '
                         '($.error_code = "SNAPSHOT_FAILED") }',
        "MetricTransformations": [{"MetricNamespace": "AlquimistaSchema",
                                   "MetricName": "FailedAnswers-dev", "MetricValue": "1",
                                   "DefaultValue": 0}]})
    actions = [TOPIC_ARN] if each.ctx.alarm_topic_arn else Match.absent()
    each.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AlquimistaSchema", "MetricName": "FailedAnswers-dev", "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Statistic": "Sum",
        "AlarmActions": actions})
    # The field the filter reads is the one the runner writes, at the top of a JSON line.
    stream = io.StringIO()
    JsonLog(stream)("event.failed", "r-1", action="upgrade", error_code="MIGRATION_FAILED",
                    error="x")
    assert json.loads(stream.getvalue())["error_code"] == "MIGRATION_FAILED"


def test_cfn_lint_finds_no_error(each: Synthesis) -> None:
    from cfnlint.api import lint

    matches = lint(json.dumps(each.json), regions=[each.ctx.region])
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches
              if m.rule.id.startswith("E")]
    assert errors == []


def operations_acknowledged(each: Synthesis) -> set[str]:
    """What the snapshot's grant and the deploy step add to cdk-nag's acknowledged findings."""
    found = set()
    if operations.snapshots(each.ctx):
        found.add("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:us-east-1:"
                  "123456789012:cluster-snapshot:alquimista-schema-*]")
    if each.ctx.migrate_on_deploy:  # its functions' grant_invoke, the waiter (deploy_step)
        found |= {"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                  "service-role/AWSLambdaBasicExecutionRole]",
                  *(f"AwsSolutions-IAM5[Resource::<{invoked}.Arn>:*]" for invoked in (
                      "Function76856677", "MigrateOnDeploy0978B065", "MigrateOnDeployPoll1F28F7EF",
                      "MigrateOnDeployProviderframeworkisComplete3005A51A",
                      "MigrateOnDeployProviderframeworkonTimeoutE87DF769")),
                  "AwsSolutions-SF1", "AwsSolutions-SF2"}
    return found


def test_cdk_nag_has_no_unacknowledged_finding(each: Synthesis) -> None:
    [nag] = [r for r in each.read("validation-report.json")["pluginReports"]
             if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    acknowledged = {s["ruleName"]: s["reason"] for s in nag["suppressedViolations"]}
    assert set(acknowledged) == ACKNOWLEDGED | operations_acknowledged(each)
    assert all(len(reason) > 40 for reason in acknowledged.values())
    annotations = Annotations.from_stack(each.stack)
    finding = Match.string_like_regexp("AwsSolutions-.*")
    assert annotations.find_error("*", finding) == []
    assert annotations.find_warning("*", finding) == []
    # Nor any other warning: `cdk synth --strict` would fail on one.
    assert annotations.find_warning("*", Match.any_value()) == []


# --- app.py as `cdk synth` runs it ----------------------------------------------------------


def run_app(values: dict[str, Any], outdir: Path) -> subprocess.CompletedProcess[str]:
    """Run deploy/cdk/app.py the way the CDK CLI does: context and outdir in the environment."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(values), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, str(CDK_APP / "app.py")], cwd=CDK_APP, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_app_py_writes_the_template_into_cdk_outdir(node: str, tmp_path: Path,
                                                    bundle: Path) -> None:
    done = run_app(context(bundle), tmp_path / "out")
    assert done.returncode == 0, done.stderr
    template = json.loads((tmp_path / "out" / "AlquimistaSchemaRunner-dev.template.json")
                          .read_text())
    assert [r["Properties"]["FunctionName"] for r in template["Resources"].values()
            if r["Type"] == FUNCTION] == ["aurora-migrations-runner-dev"]
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    assert [(r["pluginName"], r["conclusion"]) for r in report["pluginReports"]] == [
        ("AwsSolutions", "success")]


@pytest.mark.slow
def test_app_py_without_context_exits_with_the_missing_keys(node: str, tmp_path: Path) -> None:
    done = run_app({"env": "dev"}, tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid CDK context, ")
    assert "\n  missing CDK context: account, region, vpcId" in done.stderr
    assert "Traceback" not in done.stderr


def test_app_py_reports_context_errors_before_node_starts(tmp_path: Path) -> None:
    """jsii's Node banner (end-of-life, untested versions) came first and buried the error:
    the context is checked before aws_cdk is imported, so the error is all there is."""
    done = run_app({"env": "qa", "secretExtension": "true", "region": "us-east-1"},
                   tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid CDK context, ")
    assert "secretExtension: not a context key of this app; did you mean secretsExtension?" \
        in done.stderr
    assert "env='qa' is passed as ENVIRONMENT" in done.stderr
    assert "node" not in done.stderr.lower()
    assert "!!" not in done.stderr
    assert not (tmp_path / "out").exists()


# --- checkov, a second scanner ------------------------------------------------------------

# Each accepted checkov finding, on its resource type; the reason is in the template.
CHECKOV_ACCEPTED = {("CKV_AWS_158", "AWS::Logs::LogGroup"), ("CKV_AWS_173", FUNCTION),
                    ("CKV_AWS_27", "AWS::SQS::Queue")}
# The deploy step's own functions (migrateOnDeploy): outside the VPC, synchronous, no DLQ.
CHECKOV_DEPLOY_STEP = {(check, FUNCTION) for check in ("CKV_AWS_116", "CKV_AWS_117",
                                                       "CKV_AWS_115", "CKV_AWS_173")}


def checkov() -> str:
    """checkov has its own venv (.venv/checkov: it pins boto3 and packaging), else PATH."""
    own = ROOT / ".venv" / "checkov" / "bin" / "checkov"
    found = str(own) if own.is_file() else shutil.which("checkov")
    if found is None:
        missing("checkov", "python -m venv .venv/checkov && .venv/checkov/bin/pip install "
                           "checkov==3.3.30")
    return found


def test_checkov_has_no_unacknowledged_failure(each: Synthesis) -> None:
    template = each.outdir / f"{each.stack.artifact_id}.template.json"
    done = subprocess.run([checkov(), "-f", str(template), "--framework", "cloudformation",
                           "-o", "json", "--skip-download"], capture_output=True, text=True,
                          timeout=300, check=False)
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}"
              for c in report["results"]["failed_checks"]]
    assert failed == []
    assert done.returncode == 0, done.stderr
    skipped = {(c["check_id"], c["resource"].split(".")[0]): c["check_result"]["suppress_comment"]
               for c in report["results"]["skipped_checks"]}
    expected = CHECKOV_ACCEPTED | (CHECKOV_DEPLOY_STEP if each.ctx.migrate_on_deploy else set())
    expected |= {("CKV_AWS_158", "AWS::Logs::LogGroup")}
    assert set(skipped) == expected
    assert all(len(reason) > 40 for reason in skipped.values())
    assert report["summary"]["passed"] > 20
    print(f"checkov {report['summary']['checkov_version']}: {report['summary']['passed']} "
          f"passed, {report['summary']['failed']} failed, {report['summary']['skipped']} "
          "skipped (acknowledged)")
