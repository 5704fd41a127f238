"""The CDK context is checked whole before anything is synthesized (issue #22): every mistake
the issue found gets one line naming its key, in one error, in one round. Plain Python: no
node, no synthesis.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from alquimista_deploy.context import from_context
from alquimista_deploy.formats import BUNDLE_COMMAND, STACK_SET

from tests.deploy.values import KEY_ARN, SUBNETS, TOPIC_ARN, context, make_bundle, problems
from tests.support.wrong_settings import FUNCTION_ONLY, LOCAL


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle"))


def test_missing_and_malformed_keys_come_in_one_round(bundle: Path) -> None:
    """They came in two rounds: the missing keys first, the malformed ones after a fix."""
    values = {"env": "qa", "region": "us-east-1", "vpcId": "my-vpc", "bundle": str(bundle),
              "secretExtension": "true"}
    assert problems(values) == [
        "missing CDK context: account, subnetIds, clusterSecurityGroupId, dbSecretArn",
        "secretExtension: not a context key of this app; did you mean secretsExtension?",
        "vpcId='my-vpc' is not a VPC id (vpc-...)",
        "env='qa' is passed as ENVIRONMENT, which the runner refuses: ENVIRONMENT must be one "
        "of dev, staging, prod (or production), not 'qa'"]


SECRET_IN = "arn:{partition}:secretsmanager:{region}:123456789012:secret:aurora-AbCdEf"
TOO_MANY = [f"subnet-{i:017x}" for i in range(17)]
BIG = json.dumps({f"SETTING_{i}": "x" * 100 for i in range(40)})
# Each mistake the issue found (#22), and the one line it now gets.
MISTAKES: list[tuple[dict[str, Any], str]] = [
    ({"secretExtension": "true"},
     "secretExtension: not a context key of this app; did you mean secretsExtension?"),
    ({"createSecretManagerEndpoint": "true"},
     "createSecretManagerEndpoint: not a context key of this app; did you mean "
     "createSecretsManagerEndpoint?"),
    ({"SubnetIDs": "x"}, "SubnetIDs: not a context key of this app; did you mean subnetIds?"),
    ({"env": "qa"}, "env='qa' is passed as ENVIRONMENT, which the runner refuses: ENVIRONMENT "
                    "must be one of dev, staging, prod (or production), not 'qa'"),
    ({"extraEnvironment": '{"LOCK_WAIT_SECONDS": "abc"}'},
     "extraEnvironment: LOCK_WAIT_SECONDS must be a number of seconds from 0 to 900, not 'abc' "
     "(the runner would answer BAD_CONFIG to every event)"),
    ({"extraEnvironment": '{"LINT_POLICY": "strict"}'},
     "extraEnvironment: LINT_POLICY must be enforce, warn or off, not 'strict' (the runner "
     "would answer BAD_CONFIG to every event)"),
    ({"extraEnvironment": '{"CONNECT_TIMEOUT_SECONDS": "0"}'},
     "extraEnvironment: CONNECT_TIMEOUT_SECONDS must be a number of seconds from 2 to 300, not "
     "'0' (the runner would answer BAD_CONFIG to every event)"),
    ({"extraEnvironment": '{"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773"}'},
     "extraEnvironment: PARAMETERS_SECRETS_EXTENSION_HTTP_PORT belong to the Parameters and "
     "Secrets extension: set secretsExtension=true instead"),
    ({"dbSecretArn": SECRET_IN.format(partition="aws", region="us-west-2")},
     "dbSecretArn is in region us-west-2, but the stack deploys to us-east-1: the function asks "
     "Secrets Manager in its own region (use the secret's replica in us-east-1, or deploy the "
     "stack to us-west-2)"),
    ({"dbSecretArn": SECRET_IN.format(partition="aws-cn", region="us-east-1")},
     "dbSecretArn is in partition aws-cn, but region us-east-1 is in aws: use an ARN of the "
     "stack's partition"),
    ({"secretKmsKeyArn": KEY_ARN.replace("us-east-1", "eu-west-1")},
     "secretKmsKeyArn is in region eu-west-1, but the stack deploys to us-east-1: the key is "
     "used through Secrets Manager in the stack's region (kms:ViaService "
     "secretsmanager.us-east-1)"),
    ({"alarmTopicArn": TOPIC_ARN.replace("us-east-1", "sa-east-1")},
     "alarmTopicArn is in region sa-east-1, but the stack deploys to us-east-1: a CloudWatch "
     "alarm notifies only a topic in its own region"),
    ({"alarmTopicArn": TOPIC_ARN.replace("arn:aws:", "arn:aws-us-gov:")},
     "alarmTopicArn is in partition aws-us-gov, but region us-east-1 is in aws: use an ARN of "
     "the stack's partition"),
    ({"subnetIds": f"{SUBNETS[0]},{SUBNETS[1]},{SUBNETS[0]}"},
     f"subnetIds names {SUBNETS[0]} more than once: give each subnet once"),
    ({"subnetIds": json.dumps(TOO_MANY)},
     "subnetIds names 17 subnets, over Lambda's limit of 16 for a function"),
    ({"extraEnvironment": BIG},
     "extraEnvironment: the function's environment would be 4,736 bytes (its variables as "
     "JSON, as Lambda measures them), over Lambda's 4,096: shorten or drop variables"),
    ({"extraEnvironment": '{"DB_SSLROOTCERT": "/var/task/rds-ca.pem"}'},
     "extraEnvironment: DB_SSLROOTCERT='/var/task/rds-ca.pem' is not in the bundle (Lambda "
     "unzips it into /var/task): add the CA file to the zip, or point at a layer's path "
     "(/opt/...)"),
]


@pytest.mark.parametrize(("overrides", "says"), MISTAKES, ids=[next(iter(o)) + "-" + s[:30]
                                                              for o, s in MISTAKES])
def test_each_mistake_is_refused_before_synthesis_in_one_line(
        bundle: Path, overrides: dict[str, Any], says: str) -> None:
    assert problems(context(bundle, **overrides)) == [says]


def test_what_is_right_passes_the_same_checks(bundle: Path) -> None:
    ctx = from_context(context(bundle, subnetIds=json.dumps(TOO_MANY[:16]), extraEnvironment=
                               json.dumps({"LOCK_WAIT_SECONDS": "30", "LINT_POLICY": "enforce",
                                           "DB_SSLROOTCERT": "/var/task/lambda_entry/handler.py",
                                           "HTTP_PROXY": "http://proxy:3128"}),
                               env="production", dbClusterIdentifier="aurora-alq-prod",
                               alarmTopicArn=TOPIC_ARN,
                               **{"acknowledged-issue-numbers": [32775],
                                                    "aws:cdk:enable-path-metadata": True,
                                                    "@aws-cdk/core:newStyleStackSynthesis": True}))
    assert len(ctx.subnet_ids) == 16
    assert ctx.runner_environment == "prod"  # production is prod: the snapshot is on
    other = from_context(context(bundle, region="cn-north-1", dbSecretArn=SECRET_IN.format(
        partition="aws-cn", region="cn-north-1")))
    assert other.region == "cn-north-1"


def _not_a_zip(folder: Path) -> tuple[Path, str]:
    path = folder / "runner.zip"
    path.write_text("not a zip")
    return path, "cannot be read as a zip (File is not a zip file)"


def _no_handler(folder: Path) -> tuple[Path, str]:
    path = folder / "runner.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("alquimista_schema/__init__.py", "")
    return path, "has no lambda_entry/handler.py: it is not a bundle of the runner"


def _other_handler(folder: Path) -> tuple[Path, str]:
    path = folder / "runner.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lambda_entry/handler.py", "def main(event, context):\n    pass\n")
    return path, ("has a lambda_entry/handler.py without `def handler(` (the handler "
                  "lambda_entry.handler.handler)")


@pytest.mark.parametrize("make", [_not_a_zip, _no_handler, _other_handler])
def test_the_bundle_must_be_a_readable_zip_holding_the_handler(tmp_path: Path, make: Any) -> None:
    path, why = make(tmp_path)
    assert problems(context(path)) == [f"bundle: {path} {why}. Build it with `{BUNDLE_COMMAND}`"]


def test_the_checks_use_the_runners_own_validator() -> None:
    """One rule, two callers: the function's Settings refuse what the app refuses."""
    from alquimista_deploy import checks

    from alquimista_schema.errors import ConfigurationError
    from alquimista_schema.settings import Settings

    with pytest.raises(ConfigurationError, match="LOCK_WAIT_SECONDS must be a number"):
        Settings.from_env({"LOCK_WAIT_SECONDS": "abc"})
    assert checks.partition_of("us-gov-west-1") == "aws-us-gov"
    assert checks.partition_of("us-isob-east-1") == "aws-iso-b"


# --- what AWS refuses (issue 27): each refused before synthesis, in one line --------------

SCHEDULE_EXAMPLE = "for example rate(1 day), rate(6 hours) or cron(0 3 * * ? *) (03:00 UTC)"
REFUSED_SCHEDULES = {
    "rate(1 days)": "the unit is singular for 1 and plural otherwise: rate(1 day), not "
                    "rate(1 days)",
    "rate(5 day)": "the unit is singular for 1 and plural otherwise: rate(5 days), not "
                   "rate(5 day)",
    "rate(0 minutes)": "a rate's value must be a positive whole number",
    "rate(2 weeks)": "rate needs a whole number and minute(s), hour(s) or day(s), as "
                     "rate(5 minutes)",
    "cron(0 3 * * *)": "cron needs six fields (Minutes Hours Day-of-month Month Day-of-week "
                       "Year), not 5",
    "cron(0 3 * * * *)": "exactly one of Day-of-month and Day-of-week must be ? (the other "
                         "gives the days)",
    "cron(0 3 ? * ? *)": "exactly one of Day-of-month and Day-of-week must be ? (the other "
                         "gives the days)",
    "cron(60 3 * * ? *)": "Minutes '60': allows values 0-59, wildcards , - * /",
    "cron(0 24 * * ? *)": "Hours '24': allows values 0-23, wildcards , - * /",
    "cron(0 3 32 * ? *)": "Day-of-month '32': allows values 1-31, wildcards , - * ? / L W",
    "cron(0 3 1 13 ? *)": "Month '13': allows values 1-12 or JAN-DEC, wildcards , - * /",
    "cron(0 3 ? * 8 *)": "Day-of-week '8': allows values 1-7 or SUN-SAT, wildcards , - * ? L #",
    "cron(0 3 ? * MON/2 *)": "Day-of-week 'MON/2': allows values 1-7 or SUN-SAT, wildcards "
                             ", - * ? L #",
    "cron(0 3 * * ? 1969)": "Year '1969': allows values 1970-2199, wildcards , - * /",
    "cron(L 3 * * ? *)": "Minutes 'L': allows values 0-59, wildcards , - * /",
    "cron(0 3 ? * 3#1,6#3 *)": "Day-of-week '3#1,6#3': L, W and # admit no other item in the "
                               "field",
    "cron(0 3 1,L * ? *)": "Day-of-month '1,L': L, W and # admit no other item in the field",
    "cron(0/60 3 * * ? *)": "Minutes '0/60': allows values 0-59, wildcards , - * /",
}
ACCEPTED_SCHEDULES = ["rate(1 minute)", "rate(1 day)", "rate(6 hours)", "rate(15 minutes)",
                      "cron(0 3 * * ? *)", "cron(0/15 * * * ? *)", "cron(0 18 ? * MON-FRI *)",
                      "cron(0 0 L * ? *)", "cron(0 0 15W * ? *)", "cron(0 0 ? * 6L *)",
                      "cron(0 0 ? * 3#2 *)", "cron(30 2 1,15 JAN-MAR ? 2030-2035)",
                      "cron(0 3 * * ? */2)"]


@pytest.mark.parametrize(("expression", "why"), REFUSED_SCHEDULES.items())
def test_drift_schedule_follows_eventbridges_grammar(bundle: Path, expression: str,
                                                     why: str) -> None:
    assert problems(context(bundle, driftSchedule=expression)) == [
        f"driftSchedule={expression!r} is not an EventBridge schedule: {why}; "
        f"{SCHEDULE_EXAMPLE}"]


@pytest.mark.parametrize("expression", ACCEPTED_SCHEDULES)
def test_eventbridges_own_examples_are_accepted(bundle: Path, expression: str) -> None:
    assert from_context(context(bundle, driftSchedule=expression)).drift_schedule == expression


def test_environment_names_follow_lambdas_key_pattern(bundle: Path) -> None:
    """Lambda's "Key pattern: [a-zA-Z]([a-zA-Z0-9_])+" needs two characters at least."""
    assert problems(context(bundle, extraEnvironment='{"X": "1", "AWS_X": "2"}')) == [
        "extraEnvironment: environment variable(s) X cannot be set: Lambda's key pattern is "
        "[a-zA-Z]([a-zA-Z0-9_])+ (a letter, then at least one letter, digit or underscore); "
        "environment variable(s) AWS_X cannot be set: Lambda reserves names starting with AWS_, "
        "LAMBDA_ or _ and the runtime owns LANG, LD_LIBRARY_PATH, PATH, PYTHONHOME, PYTHONPATH, "
        "TZ (the region comes from the runtime)"]
    assert from_context(context(bundle, extraEnvironment='{"XY": "1"}')).extra_environment == {
        "XY": "1"}


RDS_SECRET = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:"
              "rds!cluster-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-Ab12Cd")


def test_an_rds_managed_secret_needs_the_host_and_the_database(bundle: Path) -> None:
    assert problems(context(bundle, dbSecretArn=RDS_SECRET, dbName="alquimista")) == [
        "dbSecretArn is a secret RDS manages (rds!...), which holds only username and password: "
        "pass dbHost (the cluster's writer endpoint and the database)"]
    assert problems(context(bundle, dbSecretArn=RDS_SECRET))[0].endswith(
        "pass dbHost and dbName (the cluster's writer endpoint and the database)")
    ctx = from_context(context(bundle, dbSecretArn=RDS_SECRET, dbName="alquimista",
                               dbHost="writer.cluster-x.us-east-1.rds.amazonaws.com"))
    assert ctx.db_secret_arn == RDS_SECRET


@pytest.mark.parametrize("name", ["aurora-prod", "aurora_AbCdEf", "rds!cluster-abc"])
def test_a_secret_arn_needs_its_six_character_suffix(bundle: Path, name: str) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}"
    assert problems(context(bundle, dbSecretArn=arn)) == [
        f"dbSecretArn={arn!r} ends without the hyphen and six random characters Secrets "
        "Manager appends to a secret's name, so the grant on this exact ARN would match no "
        "secret: pass the full ARN (`aws secretsmanager describe-secret --secret-id NAME "
        "--query ARN`)"]


@pytest.mark.parametrize(("value", "reserved"), [(None, 1), ("1", 1), ("5", 5), (3, 3),
                                                 ("none", None), ("None", None)])
def test_reserved_concurrency_is_one_by_default_or_none(bundle: Path, value: Any,
                                                        reserved: int | None) -> None:
    given = {} if value is None else {"reservedConcurrency": value}
    assert from_context(context(bundle, **given)).reserved_concurrency == reserved


@pytest.mark.parametrize(("value", "line"), [
    ("0", "reservedConcurrency=0 stops every invocation (Lambda throttles a function reserved "
          "at 0): give 1 (the default), a larger number, or none to leave the function "
          "unreserved"),
    (0, "reservedConcurrency=0 stops every invocation"),
    ("-1", "reservedConcurrency='-1' is not a positive whole number or none"),
    ("two", "reservedConcurrency='two' is not a positive whole number or none"),
])
def test_reserved_concurrency_refuses_zero_and_words(bundle: Path, value: Any,
                                                     line: str) -> None:
    [found] = problems(context(bundle, reservedConcurrency=value))
    assert found.startswith(line)


def _bundle_with(folder: Path, *extensions: str) -> Path:
    path = make_bundle(folder)
    with zipfile.ZipFile(path, "a") as archive:
        for name in extensions:
            archive.writestr(name, b"\x7fELF")
    return path


@pytest.mark.parametrize(("extension", "built_for"), [
    ("psycopg2/_psycopg.cpython-313-x86_64-linux-gnu.so", "CPython 3.13 on x86_64-linux-gnu"),
    ("psycopg2/_psycopg.cpython-312-aarch64-linux-gnu.so", "CPython 3.12 on aarch64-linux-gnu"),
    ("psycopg2/_psycopg.cpython-311-darwin.so", "CPython 3.11 on darwin"),
])
def test_the_bundles_extensions_must_fit_the_runtime(tmp_path: Path, extension: str,
                                                     built_for: str) -> None:
    path = _bundle_with(tmp_path, extension, "sqlalchemy/cyextension/util.cpython-312-"
                                             "x86_64-linux-gnu.so")
    assert problems(context(path)) == [
        f"bundle: {path} holds extension modules built for {built_for} ({extension}), but the "
        f"function runs python3.12 on x86_64. Build it with `{BUNDLE_COMMAND}`"]
    assert "alquimista-schema bundle --python 3.12 --arch x86_64" in BUNDLE_COMMAND


def test_extensions_for_the_runtime_pass(tmp_path: Path) -> None:
    path = _bundle_with(tmp_path, "psycopg2/_psycopg.cpython-312-x86_64-linux-gnu.so",
                        "_cffi_backend.abi3.so")
    assert from_context(context(path)).bundle == path


@pytest.mark.parametrize(("extra", "timeout", "needed"), [
    ({"SNAPSHOT_WAIT_SECONDS": "600"}, None, 610),
    ({"SNAPSHOT_WAIT_SECONDS": "280", "DEADLINE_MARGIN_SECONDS": "30"}, "300", 310),
    ({"SNAPSHOT_WAIT_SECONDS": "295"}, "300", 305),
])
def test_the_snapshot_wait_must_fit_inside_the_function(
        bundle: Path, extra: dict[str, str], timeout: str | None, needed: int) -> None:
    given = {"functionTimeout": timeout} if timeout else {}
    [line] = problems(context(bundle, extraEnvironment=json.dumps(extra), **given))
    wait, margin = extra["SNAPSHOT_WAIT_SECONDS"], extra.get("DEADLINE_MARGIN_SECONDS", "10")
    assert line == (
        f"extraEnvironment: SNAPSHOT_WAIT_SECONDS={wait} plus DEADLINE_MARGIN_SECONDS ({margin}) "
        f"is {needed}s, longer than functionTimeout=300: the wait can never be that long (the "
        f"runner stops at its deadline); raise functionTimeout to at least {needed} or lower "
        "SNAPSHOT_WAIT_SECONDS")


@pytest.mark.parametrize(("extra", "timeout"), [
    ({"SNAPSHOT_WAIT_SECONDS": "290"}, "300"), ({"SNAPSHOT_WAIT_SECONDS": "600"}, "900"),
    ({"DEADLINE_MARGIN_SECONDS": "120"}, "60")])  # the default wait is bounded, not promised
def test_a_wait_that_fits_or_is_not_given_passes(bundle: Path, extra: dict[str, str],
                                                 timeout: str) -> None:
    ctx = from_context(context(bundle, extraEnvironment=json.dumps(extra),
                               functionTimeout=timeout))
    assert ctx.function_timeout == int(timeout)


PROD = {"env": "prod", "dbClusterIdentifier": "aurora-alq-prod"}


@pytest.mark.parametrize("env", ["prod", "production", "Prod"])
def test_prod_needs_an_alarm_topic_or_the_choice_of_none(bundle: Path, env: str) -> None:
    assert problems(context(bundle, **{**PROD, "env": env.lower()})) == [
        "alarmTopicArn: env=prod needs an SNS topic for the alarms (failed answers, the "
        "dead-letter queue, drift): pass -c alarmTopicArn=arn:aws:sns:..., or "
        "alarmTopicArn=none to choose alarms without actions"]
    chosen = from_context(context(bundle, **PROD, alarmTopicArn="none"))
    assert (chosen.alarm_topic_arn, chosen.no_alarm_topic) == (None, True)
    assert from_context(context(bundle, **PROD, alarmTopicArn=TOPIC_ARN)).alarm_topic_arn == \
        TOPIC_ARN
    assert from_context(context(bundle)).alarm_topic_arn is None  # dev: no choice needed


ENDPOINT_SG = "sg-0e1d2c3b4a5f6e7d8"
RDS_FIXES = ("createRdsEndpoint=true (an RDS API endpoint in these subnets), or "
             "rdsApiThroughNat=true (egress TCP 443 to 0.0.0.0/0: HTTPS to the RDS API's public "
             "endpoint through the subnets' NAT gateway)")


@pytest.mark.parametrize(("endpoint", "extra"), [
    ({"createSecretsManagerEndpoint": "true"}, {}),
    ({"secretsManagerEndpointSecurityGroupId": ENDPOINT_SG}, {}),
    ({"createSecretsManagerEndpoint": "true"}, {"SNAPSHOT_BEFORE_UPGRADE": "false"}),
])
def test_the_rds_api_needs_a_route_when_an_endpoint_narrows_https(
        bundle: Path, endpoint: dict[str, str], extra: dict[str, str]) -> None:
    """Item 2 of the issue: with an endpoint key the function's HTTPS goes only to Secrets
    Manager, so the runner's RDS calls (restore window, snapshot) could only time out."""
    key = next(iter(endpoint))
    values = context(bundle, dbClusterIdentifier="aurora-alq-dev",
                     extraEnvironment=json.dumps(extra), **endpoint)
    assert problems(values) == [
        "dbClusterIdentifier: the runner calls the RDS API for this cluster (its restore "
        f"window, the snapshot before an upgrade and their retention), but with {key} the "
        "function's security group lets out only PostgreSQL and HTTPS to the Secrets Manager "
        f"endpoint, so the call could only time out: pass {RDS_FIXES}"]
    for fix in ("createRdsEndpoint", "rdsApiThroughNat"):
        assert from_context({**values, fix: "true"}).db_cluster_identifier


@pytest.mark.parametrize(("overrides", "line"), [
    ({"createSecretsManagerEndpoint": "true", "dbClusterIdentifier": "aurora-alq-dev",
      "createRdsEndpoint": "true", "rdsApiThroughNat": "true"},
     "createRdsEndpoint and rdsApiThroughNat exclude each other: reach the RDS API through an "
     "endpoint in the VPC, or through the subnets' NAT gateway"),
    ({"rdsApiThroughNat": "true", "dbClusterIdentifier": "aurora-alq-dev"},
     "rdsApiThroughNat: only used with dbClusterIdentifier and an endpoint key "
     "(createSecretsManagerEndpoint or secretsManagerEndpointSecurityGroupId); otherwise the "
     "function already has HTTPS to any IPv4 address, or never calls the RDS API: leave it out"),
    ({"rdsApiThroughNat": "true", "createSecretsManagerEndpoint": "true"},
     "rdsApiThroughNat: only used with dbClusterIdentifier and an endpoint key"),
])
def test_the_two_routes_exclude_each_other(bundle: Path, overrides: dict[str, str],
                                           line: str) -> None:
    [found] = problems(context(bundle, **overrides))
    assert found.startswith(line)


def test_without_an_endpoint_key_the_rds_api_is_already_reachable(bundle: Path) -> None:
    """No endpoint key: the function has HTTPS to any IPv4 address (the NAT or the VPC's own
    private DNS), the RDS API included."""
    ctx = from_context(context(bundle, dbClusterIdentifier="aurora-alq-dev"))
    assert (ctx.create_rds_endpoint, ctx.rds_api_through_nat) == (False, False)


@pytest.mark.parametrize(("extra", "name"), [({"ALQUIMISTA_LOCK_TIMEOUT": "abc"},
                                              "ALQUIMISTA_LOCK_TIMEOUT"),
                                             ({"SNAPSHOT_KEEP": "0"}, "SNAPSHOT_KEEP")])
def test_the_runners_new_settings_are_refused_here_too(bundle: Path, extra: dict[str, str],
                                                       name: str) -> None:
    """alquimista_schema.settings validates these at run time: so does the app, by the same
    validator (checks.runner_problems)."""
    [line] = problems(context(bundle, extraEnvironment=json.dumps(extra)))
    assert line.startswith(f"extraEnvironment: {name}")
    assert line.endswith("(the runner would answer BAD_CONFIG to every event)")


# Every setting of the runner's that extraEnvironment may hold (the rest come from their
# own keys: formats.STACK_SET), with a value the runner refuses.
WRONG_SETTINGS = {name: value for name, value in {**LOCAL, **FUNCTION_ONLY}.items()
                  if name not in STACK_SET}


def test_the_table_holds_every_setting_the_runner_reads_from_its_environment() -> None:
    from alquimista_schema import settings

    read = {*settings.LOCAL_KEYS, *settings.NUMBERS, *settings.COUNTS, *settings.TIMEOUTS}
    assert set(WRONG_SETTINGS) == read - STACK_SET


@pytest.mark.parametrize("name", sorted(WRONG_SETTINGS))
def test_every_setting_the_runner_would_refuse_is_refused_before_a_deploy(
        bundle: Path, name: str) -> None:
    """The app's check is the runner's own validator (settings.Settings.problems): each
    wrong value is one problem, naming the variable, before anything is synthesized."""
    from alquimista_schema.settings import Settings

    extra = {name: WRONG_SETTINGS[name]}
    [why] = Settings.problems(extra).values()
    assert problems(context(bundle, extraEnvironment=json.dumps(extra))) == [
        f"extraEnvironment: {why} (the runner would answer BAD_CONFIG to every event)"]
