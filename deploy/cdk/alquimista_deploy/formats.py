"""The context's vocabulary: its keys, what each value must look like, Lambda's limits."""

from __future__ import annotations

import re
from pathlib import Path

from alquimista_deploy import spec

REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLE_COMMAND = (f"alquimista-schema bundle --python {spec.PYTHON_VERSION} "
                  f"--arch {spec.ARCHITECTURE} --output {spec.DEFAULT_BUNDLE}")
EXAMPLE = ("cd deploy/cdk && npx aws-cdk@2 deploy -c env=dev -c account=123456789012 "
           "-c region=us-east-1 -c vpcId=vpc-0123456789abcdef0 "
           "-c subnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 "
           "-c clusterSecurityGroupId=sg-0123456789abcdef0 "
           "-c dbSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:aurora-AbCdEf")
REQUIRED = ("env", "account", "region", "vpcId", "subnetIds", "clusterSecurityGroupId",
            "dbSecretArn")
OPTIONAL = ("bundle", "dbHost", "dbPort", "dbName", "secretKmsKeyArn", "extraEnvironment",
            "createSecretsManagerEndpoint", "secretsManagerEndpointSecurityGroupId",
            "secretsExtension", "alarmTopicArn",
            # migrate on deploy, and the snapshot before it (issue 19)
            "migrateOnDeploy", "migrateTarget", "dbClusterIdentifier", "createRdsEndpoint",
            # scheduled drift and verify, IAM database authentication (issue 20)
            "driftSchedule", "iamAuth", "dbUser", "clusterResourceId",
            # the function's timeout; the deploy step's total time (issue 27)
            "functionTimeout", "migrateTotalTimeout",
            # what AWS refuses (issue 27): the reservation, the RDS API through NAT
            "reservedConcurrency", "rdsApiThroughNat")
KNOWN = REQUIRED + OPTIONAL
DEFAULT_DB_PORT = 5432
# Lambda's limits: subnets in a function's VpcConfig; the unzipped code (with layers).
MAX_SUBNETS = 16
# Lambda's longest timeout ("up to 900 seconds", Lambda's quotas); the provider framework's
# longest totalTimeout ("The maximum timeout is 1 hour", aws_cdk.custom_resources.Provider).
MAX_FUNCTION_TIMEOUT = 900
MAX_TOTAL_TIMEOUT = 3600
DEFAULT_TOTAL_TIMEOUT = 1800
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
# What the Parameters and Secrets layer's settings add to the environment (secretsExtension).
EXTENSION_ENVIRONMENT = {
    "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED": "true",
    "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "1000",
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773",
    "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL": "info",
    "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS": "3",
    "SECRETS_MANAGER_TIMEOUT_MILLIS": "0",
    "SECRETS_MANAGER_TTL": "300",
    "SSM_PARAMETER_STORE_TIMEOUT_MILLIS": "0",
    "SSM_PARAMETER_STORE_TTL": "300",
}
# key -> (pattern, what a valid value looks like)
FORMATS: dict[str, tuple[str, str]] = {
    "env": (r"[a-z][a-z0-9-]{0,19}", "lower-case letters, digits and hyphens, starting with a "
            "letter (dev, staging, prod)"),
    "account": (r"\d{12}", "a 12-digit AWS account id"),
    "region": (r"[a-z]{2}(-[a-z]+)+-\d", "a region name such as us-east-1"),
    "vpcId": (r"vpc-[0-9a-f]+", "a VPC id (vpc-...)"),
    "clusterSecurityGroupId": (r"sg-[0-9a-f]+", "a security group id (sg-...)"),
    "secretsManagerEndpointSecurityGroupId": (r"sg-[0-9a-f]+", "a security group id (sg-...)"),
    "dbSecretArn": (r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+",
                    "the full ARN of the secret "
                    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx), not its name"),
    "secretKmsKeyArn": (r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+",
                        "the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
    "alarmTopicArn": (r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+",
                      "the ARN of an SNS topic"),
    "dbHost": (r"[A-Za-z0-9.-]+", "a host name"),
    "dbName": (r"[A-Za-z_][A-Za-z0-9_$]*", "a PostgreSQL database name"),
    "dbClusterIdentifier": (r"[A-Za-z][A-Za-z0-9-]{0,62}",
                            "an Aurora cluster identifier (letters, digits, hyphens)"),
    "migrateTarget": (r"head|[A-Za-z0-9_]{1,40}", "a revision id or head (an upgrade target)"),
    # The grammar itself is aws_rules.schedule_problem's (EventBridge's, field by field).
    "driftSchedule": (r"(rate|cron)\(.*\)", "an EventBridge schedule: rate(1 day), "
                      "rate(6 hours) or cron(0 3 * * ? *)"),
    "dbUser": (r"[A-Za-z_][A-Za-z0-9_]{0,62}", "a PostgreSQL role name"),
    "clusterResourceId": (r"cluster-[A-Z0-9]{10,40}",
                          "the cluster's resource id (cluster-..., DbClusterResourceId), not "
                          "its name"),
}
SUBNET_ID = re.compile(r"subnet-[0-9a-f]+")
# The word that chooses nothing: alarmTopicArn=none (no alarm actions), reservedConcurrency=none.
NONE = "none"
# Lambda sets these itself, or they change the runtime: a deployer setting one either fails
# the deployment (AWS_REGION did, once) or silently breaks the function.
RESERVED_PREFIXES = ("AWS_", "LAMBDA_", "_")
RESERVED_NAMES = frozenset({"LANG", "TZ", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"})
# Set by the stack from their own keys: extraEnvironment may not hold them.
STACK_SET = frozenset({"DB_SECRET_ARN", "ENVIRONMENT", "DB_HOST", "DB_PORT", "DB_NAME",
                       "DB_CLUSTER_IDENTIFIER", "DB_AUTH", "DB_USER"})
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
