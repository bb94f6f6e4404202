"""The `ImportBucket` construct: the S3 bucket triggered jobs read their input from.

Stateful (uploads outlive a deploy), so it lives in the stateful stack beside the tables; the
rule that turns `Object Created` under `imports/` into a job, and the grants to read it, belong
to `Schedules` in the stateless stack.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.cloud.checkov import acknowledge_checkov

IMPORTS_RETENTION: Final = Duration.days(30)


class ImportBucket(Construct):
    """Private, TLS-only, S3-encrypted, sending its events to EventBridge; objects live 30 days."""

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Imports",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=IMPORTS_RETENTION)],
            # No auto_delete_objects: its custom resource brings a Lambda with a managed
            # policy; a dev stack's bucket must be emptied before it is destroyed.
            removal_policy=removal_policy,
        )
        # EventBridge notifications set on the CloudFormation resource itself: the L2's
        # `event_bridge_enabled` adds a custom-resource Lambda (with a managed policy) for it.
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="Uploads are transient job inputs, deleted after 30 days; every object "
                "created is an EventBridge event the launcher logs with its job, which is the "
                "audit trail imports need.",
            )
        )
        acknowledge_checkov(
            self.bucket,
            {
                "CKV_AWS_18": "Uploads are transient job inputs, deleted after 30 days; every "
                "object created is an EventBridge event the launcher logs with its job, which "
                "is the audit trail imports need.",
                "CKV_AWS_21": "No versioning: an upload is read once by the job it starts (a new "
                "version of a key is a new import) and expires after 30 days; old versions "
                "would only keep personal data longer.",
            },
        )
