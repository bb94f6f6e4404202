"""`shared.services.ports.DeviceStore` on the devices table (`shared.tables.DEVICES`).

Items: `ownerKey` = "{tenant}#{ownerId}" / `deviceId`, then the `Device` fields. Every read and
write is under the caller's owner key, so another user's or tenant's device is simply absent.
No token is stored: SNS holds it on the endpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.adapters.dynamo_codec import from_attribute_map, to_attribute_map
from shared.domain.push import Device, owner_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef


def _key(tenant_id: str, owner_id: str, device_id: str) -> dict[str, Any]:
    return {"ownerKey": {"S": owner_key(tenant_id, owner_id)}, "deviceId": {"S": device_id}}


def _device(item: dict[str, Any]) -> Device:
    document = from_attribute_map(item)
    document.pop("ownerKey", None)
    return Device.model_validate(document)


class DynamoDeviceStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, tenant_id: str, owner_id: str, device_id: str) -> Device | None:
        answer = self._client.get_item(
            TableName=self._table, Key=_key(tenant_id, owner_id, device_id), ConsistentRead=True
        )
        return _device(answer["Item"]) if "Item" in answer else None

    def put(self, device: Device) -> None:
        document = device.model_dump(mode="json", exclude_none=True)
        document["ownerKey"] = owner_key(device.tenant_id, device.owner_id)
        self._client.put_item(TableName=self._table, Item=to_attribute_map(document))

    def list(self, tenant_id: str, owner_id: str) -> list[Device]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "ownerKey = :owner",
            "ExpressionAttributeValues": {":owner": {"S": owner_key(tenant_id, owner_id)}},
            "ConsistentRead": True,
        }
        devices: list[Device] = []
        while True:
            page = self._client.query(**query)
            devices.extend(_device(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return devices
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, tenant_id: str, owner_id: str, device_id: str) -> bool:
        answer = self._client.delete_item(
            TableName=self._table,
            Key=_key(tenant_id, owner_id, device_id),
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in answer

    def mark_disabled(
        self, tenant_id: str, owner_id: str, device_id: str, reason: str, now: datetime
    ) -> None:
        """Skip this device from now on (until its token is registered again)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(tenant_id, owner_id, device_id),
                UpdateExpression="SET enabled = :off, disabledReason = :why, updatedAt = :now",
                ConditionExpression="attribute_exists(deviceId)",  # deleted stays deleted
                ExpressionAttributeValues={
                    ":off": {"BOOL": False},
                    ":why": {"S": reason},
                    ":now": {"S": now.isoformat()},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
