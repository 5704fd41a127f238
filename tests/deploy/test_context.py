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
from alquimista_deploy.formats import BUNDLE_COMMAND

from tests.deploy.values import KEY_ARN, SUBNETS, TOPIC_ARN, context, make_bundle, problems


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
                               env="production", **{"acknowledged-issue-numbers": [32775],
                                                    "aws:cdk:enable-path-metadata": True,
                                                    "@aws-cdk/core:newStyleStackSynthesis": True}))
    assert len(ctx.subnet_ids) == 16
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
