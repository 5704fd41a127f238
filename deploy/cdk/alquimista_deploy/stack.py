"""The runner's stack: the function next to an existing Aurora cluster, and every path it needs.

Nothing is looked up at synth time (no credentials needed), nothing is built (the code is the
zip `alquimista-schema bundle` made), and every network rule the function depends on is made
here, so no other stack has to know this one and nothing is added by hand.
"""

from __future__ import annotations

from aws_cdk import (
    Annotations,
    App,
    CfnOutput,
    Duration,
    Environment,
    Fn,
    Tags,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from alquimista_deploy import checks, deploy_step, operations, spec
from alquimista_deploy.context import DeployContext, from_context
from alquimista_deploy.findings import LOG_KEY_REASON, acknowledge, checkov_skip
from alquimista_deploy.parts import RunnerParts

ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}
MEMORY_MB = 512
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
VPC_ACCESS_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"
# The runner logs one JSON line per step; a failed answer carries error_code.
FAILED_ANSWERS = logs.FilterPattern.any(
    logs.FilterPattern.string_value("$.error_code", "=", "INTERNAL_ERROR"),
    logs.FilterPattern.string_value("$.error_code", "=", "MIGRATION_FAILED"),
    logs.FilterPattern.string_value("$.error_code", "=", "SNAPSHOT_FAILED"),
)
# checkov findings accepted on purpose, each with its reason (in the template's Metadata).
ENVIRONMENT_KEY_REASON = (
    "the environment holds no secret (the password stays in Secrets Manager): ARNs, a host "
    "name, numbers and names, encrypted at rest with Lambda's AWS managed key")
QUEUE_KEY_REASON = (
    "encrypted at rest with SQS managed keys (SqsManagedSseEnabled, which cdk-nag's SQS2 "
    "accepts); checkov's check only recognises KmsMasterKeyId. A KMS key here would add a key "
    "policy that could keep Lambda from writing a failed event")
# IAM compares tag keys case-insensitively: one spelling each, set in one place.
PROJECT = "alquimista"
COMPONENT = "schema-runner"


def define(app: App) -> RunnerStack:
    """Read the app's context, define the one stack, and have cdk-nag check it at synthesis."""
    ctx = from_context(app.node.get_all_context())
    stack = RunnerStack(app, ctx.stack_name, ctx=ctx)
    # An AwsSolutions finding not acknowledged on its construct fails synthesis.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


class RunnerStack(RunnerParts):
    """The migrations runner function, its role, log group, alarm and network rules."""

    def __init__(self, scope: Construct, construct_id: str, *, ctx: DeployContext) -> None:
        super().__init__(scope, construct_id, env=Environment(account=ctx.account,
                                                               region=ctx.region),
                         description=f"alquimista-schema migrations runner ({ctx.env})")
        self.ctx = ctx
        for key, value in {"Project": PROJECT, "Environment": ctx.env,
                           "Component": COMPONENT}.items():
            Tags.of(self).add(key, value)
        # Imported by id, never looked up (that needs credentials at synth). The zones are a
        # token nothing reads: the subnets below are given explicitly.
        self.vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=ctx.vpc_id, region=ctx.region,
                                               availability_zones=Fn.get_azs(ctx.region))
        Annotations.of(self.vpc).acknowledge_warning(
            "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
            "no construct selects subnets by zone: every one is given by id")
        # As given, whatever their kind: isolated subnets need no egress route.
        self.subnets = ec2.SubnetSelection(subnets=[
            self._subnet(index, subnet_id) for index, subnet_id in enumerate(ctx.subnet_ids)])
        self.security_group = self._security_group()
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        checkov_skip(self.log_group, "CKV_AWS_158", LOG_KEY_REASON)
        self.dead_letters = self._dead_letter_queue()
        self.function = self._function(self._role())
        self.alarm = self._alarm()
        if ctx.create_rds_endpoint:
            operations.rds_endpoint(self)
        self.migration = deploy_step.migration(self) if ctx.migrate_on_deploy else None
        """The deploy step (migrateOnDeploy): make an application stack depend on it."""
        self.drift_alarm = operations.schedule(self) if ctx.drift_schedule else None
        CfnOutput(self, "FunctionName", value=self.function.function_name,
                  description="for `alquimista-schema invoke --function`")
        CfnOutput(self, "SecurityGroupId", value=self.security_group.security_group_id)
        CfnOutput(self, "LogGroupName", value=self.log_group.log_group_name)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letters.queue_url,
                  description="asynchronous invocations that failed (a schedule's, say)")

    def _subnet(self, index: int, subnet_id: str) -> ec2.ISubnet:
        """A subnet by id; its route table is never read (nothing routes through it here)."""
        subnet = ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
        Annotations.of(subnet).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "the function and the endpoint need the subnet id only, never its route table")
        return subnet

    def _security_group(self) -> ec2.SecurityGroup:
        """The function's group, admitted by the cluster's group and by Secrets Manager."""
        ctx = self.ctx
        group = ec2.SecurityGroup(
            self, "FunctionSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description=f"{ctx.function_name}: to the Aurora cluster and Secrets Manager only")
        group.add_egress_rule(ec2.Peer.security_group_id(ctx.cluster_security_group_id),
                              ec2.Port.tcp(ctx.database_port), "PostgreSQL on the Aurora cluster")
        cluster = ec2.SecurityGroup.from_security_group_id(
            self, "ClusterSecurityGroup", ctx.cluster_security_group_id, mutable=True)
        # In this stack, on the cluster's group: the cluster's stack needs no reference to
        # this one, so there is no cycle between stacks and no rule added by hand.
        ec2.CfnSecurityGroupIngress(
            self, "ClusterIngressFromFunction", group_id=cluster.security_group_id,
            ip_protocol="tcp", from_port=ctx.database_port, to_port=ctx.database_port,
            source_security_group_id=group.security_group_id,
            description=f"PostgreSQL from {ctx.function_name}")
        if ctx.create_secrets_manager_endpoint:
            self._secrets_manager_endpoint(group)
        elif ctx.secrets_manager_endpoint_security_group_id:
            self._existing_endpoint(group, ctx.secrets_manager_endpoint_security_group_id)
        else:
            # The VPC's own endpoint (private DNS) or, through NAT, the public one.
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                  "HTTPS to Secrets Manager")
        if ctx.rds_api_through_nat:  # only with an endpoint key (checks._nat_unneeded)
            group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), checks.NAT_EGRESS)
        return group

    def _secrets_manager_endpoint(self, function_group: ec2.SecurityGroup) -> None:
        """An Interface endpoint whose group admits the function on 443, and nothing else;
        the function's HTTPS goes to that group only. Each rule is made on its own side
        (``connections.allow_from`` described the egress as "HTTPS from ...")."""
        group = ec2.SecurityGroup(
            self, "SecretsManagerEndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description=f"Secrets Manager endpoint: HTTPS from {self.ctx.function_name}")
        group.add_ingress_rule(function_group, ec2.Port.tcp(443),
                               f"HTTPS from {self.ctx.function_name}")
        function_group.add_egress_rule(group, ec2.Port.tcp(443),
                                       "HTTPS to the Secrets Manager endpoint")
        ec2.InterfaceVpcEndpoint(
            self, "SecretsManagerEndpoint", vpc=self.vpc, subnets=self.subnets,
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            security_groups=[group], private_dns_enabled=True, open=False)

    def _existing_endpoint(self, function_group: ec2.SecurityGroup, endpoint_group: str) -> None:
        """The VPC's own Secrets Manager endpoint admits the function on 443 (rule made here)."""
        function_group.add_egress_rule(ec2.Peer.security_group_id(endpoint_group),
                                       ec2.Port.tcp(443), "HTTPS to the Secrets Manager endpoint")
        ec2.CfnSecurityGroupIngress(
            self, "SecretsManagerEndpointIngressFromFunction", group_id=endpoint_group,
            ip_protocol="tcp", from_port=443, to_port=443,
            source_security_group_id=function_group.security_group_id,
            description=f"HTTPS from {self.ctx.function_name}")

    def _role(self) -> iam.Role:
        """Read one secret (or connect as one IAM user), snapshot one cluster when it
        should, manage the function's network interfaces (and write its logs)."""
        statements = operations.runner_statements(self, self.ctx)
        role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.ctx.function_name}: reads the database secret (or connects "
                        "with IAM), snapshots its cluster, nothing else",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(VPC_ACCESS_POLICY)],
            inline_policies={"WhatTheRunnerCalls": iam.PolicyDocument(statements=statements)})
        if operations.snapshots(self.ctx):
            acknowledge(role, "IAM5[Resource::arn:<AWS::Partition>:rds:"
                        f"{self.ctx.region}:{self.ctx.account}:cluster-snapshot:"
                        f"{operations.SNAPSHOT_PREFIX}*]",
                        "a snapshot's name carries the revision range and the request id, "
                        "known only at run time: the prefix keeps the runner to its own")
        acknowledge(role, f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{VPC_ACCESS_POLICY}]",
                    "AWS maintains this policy for exactly this purpose: the network-interface "
                    "actions a function in a VPC needs, which EC2 only grants on '*'")
        return role

    def _function(self, role: iam.Role) -> lambda_.Function:
        """The runner: the prebuilt zip as is, one run at a time (reservedConcurrency, 1 by
        default; with none the migration lock still serializes runs), never retried."""
        ctx = self.ctx
        extension = lambda_.ParamsAndSecretsLayerVersion.from_version(
            lambda_.ParamsAndSecretsVersions.V1_0_103, http_port=2773,
            secrets_manager_ttl=Duration.minutes(5)) if ctx.secrets_extension else None
        function = lambda_.Function(
            self, "Function", function_name=ctx.function_name,
            description=f"alquimista-schema migrations runner ({ctx.env})",
            code=lambda_.Code.from_asset(str(ctx.bundle)), handler=spec.HANDLER,
            runtime=lambda_.Runtime(spec.RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=ARCHITECTURES[spec.ARCHITECTURE], memory_size=MEMORY_MB,
            timeout=Duration.seconds(ctx.function_timeout),
            reserved_concurrent_executions=ctx.reserved_concurrency,
            vpc=self.vpc, vpc_subnets=self.subnets, security_groups=[self.security_group],
            role=role, log_group=self.log_group, environment=ctx.function_environment(),
            params_and_secrets=extension, retry_attempts=0,
            dead_letter_queue=self.dead_letters)
        checkov_skip(function, "CKV_AWS_173", ENVIRONMENT_KEY_REASON)
        acknowledge(function, "L1", f"the bundle is built for {spec.RUNTIME} "
                    "(alquimista-schema bundle --python); a newer runtime needs a new bundle "
                    "and its own test run first")
        return function

    def _dead_letter_queue(self) -> sqs.Queue:
        """Where an asynchronous invocation that failed lands (retries: 0), and its alarm.

        The runner answers every event it can; what lands here is a timeout, a crash, or
        an event Lambda could not deliver. Encrypted (SQS managed), TLS only, 14 days.
        """
        queue = sqs.Queue(self, "DeadLetterQueue", encryption=sqs.QueueEncryption.SQS_MANAGED,
                          enforce_ssl=True, retention_period=Duration.days(14))
        checkov_skip(queue, "CKV_AWS_27", QUEUE_KEY_REASON)
        self.alarm_on(queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"), "DeadLetterAlarm",
            f"an asynchronous invocation of {self.ctx.function_name} failed (see the "
            "dead-letter queue and the log group)")
        return queue

    def _alarm(self) -> cloudwatch.Alarm:
        """Alarm on answers that report a failed migration or a bug."""
        return self.alarm_on(
            self.log_count("FailedAnswers", FAILED_ANSWERS).metric(
                statistic="Sum", period=Duration.minutes(5)), "FailedAnswersAlarm",
            f"{self.ctx.function_name} answered MIGRATION_FAILED or SNAPSHOT_FAILED or "
            "INTERNAL_ERROR (see its log group)")
