"""Recurring schedules on DynamoDB (`shared.tables.SCHEDULES`): one item per schedule.

Writes are conditional: a new schedule must not exist yet, a replacement must find the version
it was computed from (recording a run and pausing at once cannot lose either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_codec import from_attribute_map, to_attribute_map
from shared.adapters.dynamo_pages import query_page
from shared.domain.errors import ScheduleNotFound
from shared.domain.schedules import ScheduleRecord
from shared.tables import SCHEDULES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef


def _item(schedule: ScheduleRecord) -> dict[str, Any]:
    document = schedule.model_dump(mode="json", exclude_none=True)
    return to_attribute_map(document)


def _failed_condition(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoScheduleStore:
    """`shared.services.ports.ScheduleStore` on DynamoDB."""

    def __init__(self, client: DynamoDBClient, table: str, cursors: CursorCodec) -> None:
        self._client = client
        self._table = table
        self._cursors = cursors

    def insert(self, schedule: ScheduleRecord) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=_item(schedule),
            ConditionExpression="attribute_not_exists(scheduleId)",
        )

    def get(self, tenant_id: str, schedule_id: str) -> ScheduleRecord:
        item = self._client.get_item(
            TableName=self._table,
            Key={"tenantId": {"S": tenant_id}, "scheduleId": {"S": schedule_id}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            raise ScheduleNotFound(schedule_id)
        return ScheduleRecord.model_validate(from_attribute_map(item))

    def list(
        self, tenant_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ScheduleRecord], str | None]:
        """One page of the tenant's schedules and the opaque, signed cursor of the next one."""
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "tenantId = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
        }
        scope = f"schedules|{tenant_id}"
        if cursor:
            query["ExclusiveStartKey"] = self._cursors.decode(scope, cursor)
        page = query_page(
            self._client, query, limit=limit, position=SCHEDULES.position_attributes()
        )
        schedules = [ScheduleRecord.model_validate(from_attribute_map(item)) for item in page.items]
        last = page.next_position
        return schedules, self._cursors.encode(scope, last) if last else None

    def replace(self, schedule: ScheduleRecord) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(schedule),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(schedule.version - 1)}},
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def delete(self, tenant_id: str, schedule_id: str) -> None:
        self._client.delete_item(
            TableName=self._table,
            Key={"tenantId": {"S": tenant_id}, "scheduleId": {"S": schedule_id}},
        )
