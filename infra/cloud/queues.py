"""Dead-letter queues: what Tether's asynchronous paths give up on, kept for an operator.

Every one is the same kind of queue (SQS-managed encryption, TLS only, two weeks to notice,
fix the cause and redrive) and is itself the end of the line, so cdk-nag's "a queue needs a
DLQ" (SQS3) is acknowledged with the owner's reason.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.cloud.checkov import acknowledge_checkov

DEAD_LETTER_RETENTION: Final = Duration.days(14)


def dead_letter_queue(
    scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy, why_no_dlq: str
) -> sqs.Queue:
    """An encrypted, TLS-only queue kept 14 days; `why_no_dlq` answers cdk-nag's SQS3."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
        removal_policy=removal_policy,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(id="AwsSolutions::AwsSolutions-SQS3", reason=why_no_dlq)
    )
    acknowledge_checkov(
        queue,
        {
            "CKV_AWS_27": "Encrypted: SQS-managed server-side encryption (SqsManagedSseEnabled), "
            "which this check does not recognise (it looks for a KMS key only).",
        },
    )
    return queue
