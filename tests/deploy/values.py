"""What the CDK tests share: the fixture context, a stand-in bundle, and the one error's lines.

deploy/cdk is on the path (tests/deploy/conftest.py), as `cdk synth` running app.py puts it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from alquimista_deploy.context import ContextError, from_context

ROOT = Path(__file__).resolve().parents[2]
CDK_APP = ROOT / "deploy" / "cdk"

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:aurora-AbCdEf"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:alquimista-ops"
CLUSTER_SG = "sg-0c1a2b3c4d5e6f708"
ENDPOINT_SG = "sg-0e1d2c3b4a5f6e7d8"  # the VPC's existing Secrets Manager endpoint
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
CONTEXT: dict[str, Any] = {
    "env": "dev", "account": "123456789012", "region": "us-east-1",
    "vpcId": "vpc-0123456789abcdef0", "subnetIds": ",".join(SUBNETS),
    "clusterSecurityGroupId": CLUSTER_SG, "dbSecretArn": SECRET_ARN,
}
# Everything optional switched on, and values given the way `-c key=value` gives them.
FULL: dict[str, Any] = {
    "subnetIds": json.dumps(SUBNETS), "dbHost": "writer.cluster-x.us-east-1.rds.amazonaws.com",
    "dbPort": "6543", "dbName": "alquimista", "createSecretsManagerEndpoint": "true",
    "secretsExtension": "true", "alarmTopicArn": TOPIC_ARN,
    "extraEnvironment": json.dumps({"LOCK_WAIT_SECONDS": "30"}),
    "secretKmsKeyArn": KEY_ARN,
}
RESERVED = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN",
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT",
            "LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID", "aws_region", "TZ", "PATH",
            "LD_LIBRARY_PATH", "PYTHONPATH", "1BAD", "BAD-NAME"]
# cdk-nag findings accepted on purpose; a new one must be acknowledged with its reason.
ACKNOWLEDGED = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaVPCAccessExecutionRole]",
    "AwsSolutions-L1",
}
TAGS = {"Project": "alquimista", "Environment": "dev", "Component": "schema-runner"}


def make_bundle(folder: Path) -> Path:
    """A stand-in for `alquimista-schema bundle`'s zip: lambda_entry at the root."""
    path = folder / "runner.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lambda_entry/__init__.py", "")
        archive.writestr("lambda_entry/handler.py", "def handler(event, context):\n    return {}\n")
    return path


def context(bundle: Path, **overrides: Any) -> dict[str, Any]:
    """The fixture context with a bundle, plus what a test changes."""
    return {**CONTEXT, "bundle": str(bundle), **overrides}


def problems(values: dict[str, Any], root: Path = ROOT) -> list[str]:
    """The lines of the one error from_context raises (each names its key)."""
    with pytest.raises(ContextError) as caught:
        from_context(values, root=root)
    head, *lines = str(caught.value).splitlines()
    assert head.startswith("invalid CDK context, ")
    assert head.endswith(" problem(s); nothing was synthesized:")
    return [line.removeprefix("  ") for line in lines if line.startswith("  ")
            and not line.startswith("  cd deploy/cdk")]

# Migrate on deploy, the snapshot before it (with its RDS endpoint), the scheduled checks.
OPERATIONS: dict[str, Any] = {
    "migrateOnDeploy": "true", "migrateTarget": "head", "dbClusterIdentifier": "aurora-alq-dev",
    "createRdsEndpoint": "true", "driftSchedule": "rate(1 day)", "alarmTopicArn": TOPIC_ARN,
    "extraEnvironment": json.dumps({"SNAPSHOT_BEFORE_UPGRADE": "true"}),
}
CLUSTER_RESOURCE_ID = "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY2"
# IAM database authentication: no secret at all.
IAM: dict[str, Any] = {
    "iamAuth": "true", "dbUser": "migrator", "clusterResourceId": CLUSTER_RESOURCE_ID,
    "dbSecretArn": "", "dbHost": "writer.cluster-x.us-east-1.rds.amazonaws.com",
    "dbName": "alquimista", "extraEnvironment": json.dumps({"DB_SSLROOTCERT": "/opt/rds-ca.pem"}),
}
