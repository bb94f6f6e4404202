"""Creates the tables of `shared.tables` through the DynamoDB API (moto, local stack).

The cloud gets the same tables from the CDK `Storage` construct; both read one spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.tables import TABLES, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort, "KeyType": "RANGE"})
    return schema


def create_table_request(spec: TableSpec, name: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": attr.name, "AttributeType": attr.type.value}
            for attr in spec.key_attributes
        ],
        "KeySchema": _key_schema(
            spec.partition_key.name, spec.sort_key.name if spec.sort_key else None
        ),
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(
                    index.partition_key.name, index.sort_key.name if index.sort_key else None
                ),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    if spec.stream is not None:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": spec.stream.value,
        }
    return request


def create_tables(client: DynamoDBClient, prefix: str) -> dict[str, str]:
    """Create every table that does not exist yet; returns spec key -> table name."""
    existing = set(client.list_tables().get("TableNames", []))
    names: dict[str, str] = {}
    for spec in TABLES:
        name = spec.local_name(prefix)
        names[spec.key] = name
        if name in existing:
            continue
        client.create_table(**create_table_request(spec, name))
        if spec.ttl_attribute is not None:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    return names
