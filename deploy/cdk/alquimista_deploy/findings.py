"""Findings accepted on one construct, each with its reason on record: cdk-nag's and checkov's."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

LOG_KEY_REASON = (
    "CloudWatch Logs encrypts every log group at rest (AWS owned keys); the runner never logs "
    "a secret (passwords masked, the suite fails on any leak), so a customer managed key would "
    "add a key policy to keep without protecting anything more")


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag AwsSolutions finding on one construct, with the reason on record."""
    Validations.of(construct).acknowledge(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason))


def checkov_skip(construct: IConstruct, check: str, reason: str) -> None:
    """Accept one checkov finding on one resource: checkov reads the resource's
    ``Metadata.checkov.skip`` list ({id, comment}) in the template, the reason with it."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource), construct.node.path
    earlier = resource.get_metadata("checkov") or {"skip": []}
    resource.add_metadata("checkov", {"skip": [*earlier["skip"], {"id": check,
                                                                  "comment": reason}]})
