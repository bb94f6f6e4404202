"""Acknowledging checkov's findings on a resource, with the reason, in the template itself.

checkov (run on the synthesized templates by tests/infra/test_checkov.py) reads a resource's
`Metadata.checkov.skip` list; each entry names a check and says why it does not apply. The
constructs call `acknowledge_checkov` right beside their cdk-nag acknowledgements, so one
finding has one reason in one place, whichever tool raised it. The reasons every construct
shares (log groups, Tether's functions) are here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import CfnResource
from constructs import IConstruct

CHECKOV_METADATA: Final = "checkov"

LOG_GROUP_WITHOUT_CMK: Final = {
    "CKV_AWS_158": "CloudWatch Logs encrypts every log group at rest with its own key; Tether's "
    "logs are structured and never carry tokens or push tokens, so a customer-managed key "
    "would add a key policy for the logs service and a monthly key cost for no data it guards.",
}

DEAD_LETTER_CHECK: Final = "CKV_AWS_116"
# What checkov raises on every Lambda function, and why none applies to Tether's.
FUNCTION_FINDINGS: Final = {
    "CKV_AWS_115": "No reserved concurrency per function: reserving takes capacity out of the "
    "account's shared pool whether used or not; run slots are bounded per tenant by Tether "
    "itself (the limits table), and an operator who needs a cap sets it per account.",
    DEAD_LETTER_CHECK: "No DLQ on functions invoked synchronously (API Gateway, Step "
    "Functions, the stream's event source mapping, which has its own on-failure queue) or on a "
    "schedule that retries itself (the hourly cleanup): a function DLQ only ever holds "
    "asynchronous invocations. The launcher, invoked asynchronously, has one.",
    "CKV_AWS_117": "Not in a VPC: the functions reach only AWS APIs (DynamoDB, Step Functions, "
    "SNS, Scheduler, API Gateway) over TLS with IAM; a VPC would add NAT or endpoints and cold "
    "start time and protect nothing more.",
    "CKV_AWS_173": "Environment variables hold names and ARNs only (tables, state machine, "
    "secret ARNs), never a secret: secrets are read from Secrets Manager at cold start. Lambda "
    "encrypts them at rest with its service key.",
}


def acknowledge_checkov(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Skip these checkov checks (id → reason) on the construct's CloudFormation resource."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    assert isinstance(resource, CfnResource), construct.node.path
    existing = resource.get_metadata(CHECKOV_METADATA) or {"skip": []}
    skips = [*existing["skip"], *({"id": id_, "comment": why} for id_, why in reasons.items())]
    resource.add_metadata(CHECKOV_METADATA, {"skip": skips})
