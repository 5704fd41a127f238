"""The runner stack's parts that operations.py and deploy_step.py build on.

Declared here, apart from stack.py (whose RunnerStack is this, built): those modules take
the stack and read its parts, and stack.py calls them, so they cannot import stack.py.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from alquimista_deploy.validated import DeployContext


class RunnerParts(Stack):
    """A stack with the runner's parts, set by RunnerStack as it builds them."""

    ctx: DeployContext
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.SecurityGroup
    log_group: logs.LogGroup
    dead_letters: sqs.Queue
    function: lambda_.Function

    def log_count(self, name: str, pattern: logs.IFilterPattern) -> logs.MetricFilter:
        """Count the function's log lines matching ``pattern`` (metric ``NAME-ENV``)."""
        return logs.MetricFilter(
            self, name, log_group=self.log_group, filter_pattern=pattern,
            metric_namespace="AlquimistaSchema", metric_name=f"{name}-{self.ctx.env}",
            metric_value="1", default_value=0)

    def alarm_on(self, metric: cloudwatch.IMetric, name: str,
                 description: str) -> cloudwatch.Alarm:
        """Alarm as soon as ``metric`` reaches 1 in a period (no data is no trouble), and
        notify ``alarmTopicArn`` when one is given."""
        alarm = cloudwatch.Alarm(
            self, name, metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description)
        if self.ctx.alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, f"{name}Topic", self.ctx.alarm_topic_arn)
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        return alarm
