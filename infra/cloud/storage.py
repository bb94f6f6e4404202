"""The `Storage` construct: Tether's DynamoDB tables, built from `shared.tables.TABLES`.

Keys, indexes, TTL and streams come from the specs alone (the local stack builds its moto tables
from the same specs); this module adds only what exists in the cloud: billing, recovery,
encryption, removal. Each spec also names the environment variable through which handlers
find the table (`TableSpec.env_var`), so `function_environment()` cannot miss a table.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.cloud.checkov import acknowledge_checkov
from shared.tables import (
    TABLES,
    AttributeType,
    KeyAttribute,
    StreamView,
    TableSpec,
)

_ATTRIBUTE_TYPES: Final[Mapping[AttributeType, dynamodb.AttributeType]] = MappingProxyType(
    {
        AttributeType.STRING: dynamodb.AttributeType.STRING,
        AttributeType.NUMBER: dynamodb.AttributeType.NUMBER,
    }
)

_STREAM_VIEWS: Final[Mapping[StreamView, dynamodb.StreamViewType]] = MappingProxyType(
    {StreamView.NEW_IMAGE: dynamodb.StreamViewType.NEW_IMAGE}
)

# Encryption: the AWS-managed key (alias aws/dynamodb) rather than DynamoDB's default AWS-owned
# key or a customer-managed key. Unlike the owned key, its use shows up in CloudTrail, which is
# what an audit of "who read the job data" needs. A customer-managed key would add a key policy,
# rotation and a monthly fee per key, and every Lambda and stream consumer would need kms grants;
# it buys cross-account sharing and crypto-shredding by key deletion, which Tether needs neither
# of (data stays in one account; messages expire in 24 h, jobs in 30 days). DynamoDB switches a
# table's key in place, so moving to a customer-managed key later is an update, not a migration.
_ENCRYPTION: Final = dynamodb.TableEncryption.AWS_MANAGED


class Storage(Construct):
    """One DynamoDB table per spec in `shared.tables.TABLES`, reachable by spec key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        deletion_protection: bool,
        recovery_period_days: int = 35,
    ) -> None:
        super().__init__(scope, construct_id)
        self._tables: dict[str, dynamodb.Table] = {
            spec.key: _build_table(
                self,
                spec,
                removal_policy=removal_policy,
                deletion_protection=deletion_protection,
                recovery_period_days=recovery_period_days,
            )
            for spec in TABLES
        }

    @property
    def tables(self) -> Mapping[str, dynamodb.Table]:
        """The tables by spec key, e.g. `storage.tables["jobs"]`."""
        return MappingProxyType(self._tables)

    def function_environment(self, *keys: str) -> dict[str, str]:
        """Environment variables naming the tables `keys` (every table when none are given).

        For a Lambda function's `environment`; a fresh dict each call, so a caller may add its
        own variables to it.
        """
        unknown = set(keys) - set(self._tables)
        if unknown:
            raise KeyError(f"no such table spec: {', '.join(sorted(unknown))}")
        return {
            spec.env_var: self._tables[spec.key].table_name
            for spec in TABLES
            if not keys or spec.key in keys
        }


def _build_table(
    scope: Construct,
    spec: TableSpec,
    *,
    removal_policy: RemovalPolicy,
    deletion_protection: bool,
    recovery_period_days: int,
) -> dynamodb.Table:
    # No table_name: CloudFormation names the table, so two stages (or two developers' stacks)
    # can share an account and a key-schema change can replace the table.
    table = dynamodb.Table(
        scope,
        spec.key,
        partition_key=_attribute(spec.partition_key),
        sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
        # Job traffic is bursty (a CSV import, then nothing for hours): on-demand follows it
        # without capacity planning or throttling the first batch.
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=_ENCRYPTION,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True,
            recovery_period_in_days=recovery_period_days,
        ),
        time_to_live_attribute=spec.ttl_attribute,
        stream=_STREAM_VIEWS[spec.stream] if spec.stream else None,
        removal_policy=removal_policy,
        deletion_protection=deletion_protection,
    )
    acknowledge_checkov(
        table,
        {
            "CKV_AWS_119": "Encrypted at rest with the AWS-managed key (aws/dynamodb), whose use "
            "CloudTrail records; only Tether's roles in this account are granted the tables, so "
            "a customer-managed key would add a key policy to keep in step with those grants, a "
            "monthly cost per key and KMS requests on every read and write.",
        },
    )
    for index in spec.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(index.partition_key),
            sort_key=_attribute(index.sort_key) if index.sort_key else None,
            # ALL: every index query answers without a second read of the base table.
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


def _attribute(attribute: KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=attribute.name, type=_ATTRIBUTE_TYPES[attribute.type])
