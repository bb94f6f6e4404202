"""WebSocket connections, their subscriptions and delivery cursors, on one DynamoDB table.

Item kinds (see `shared.tables.CONNECTIONS`):

* connection: pk "CONN#{id}", sk "META": who connected (the verified principal), until when.
* subscription: pk "CONN#{id}", sk "SUB#{jobKey}", with `jobKey` and `connectionId` for the
  sparse `byJob` index the dispatcher queries to find a job's live subscribers.
* delivery cursor: pk "CURSOR#{tenant}#{subject}", sk jobId: the highest seq the user
  acknowledged, per job. It belongs to the user, not to a connection, so it survives the
  reconnects it exists for.

Every item carries `expiresAt`; readers skip expired items because TTL deletes late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from shared.adapters.dynamo_codec import from_attribute_map, to_attribute_map
from shared.adapters.dynamo_jobs import job_key
from shared.domain.auth import Principal
from shared.services.ports import ConnectionRecord, DeliveryCursor, Subscriber

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, WriteRequestTypeDef

# API Gateway closes every connection within 2 hours; keep the items a little longer so a
# late $disconnect still finds them, and let TTL (and the hourly cleanup) take the rest.
CONNECTION_TTL: Final = timedelta(hours=2, minutes=30)
CURSOR_TTL: Final = timedelta(days=30)
_META: Final = "META"
_BATCH_WRITE_LIMIT: Final = 25


def _conn_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def _cursor_pk(tenant_id: str, subject: str) -> str:
    return f"CURSOR#{tenant_id}#{subject}"


class DynamoConnectionStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    # -- connections ------------------------------------------------------------------------

    def connect(self, connection_id: str, principal: Principal, now: datetime) -> None:
        item = {
            "pk": _conn_pk(connection_id),
            "sk": _META,
            "connectionId": connection_id,
            "principal": principal.to_context(),
            "connectedAt": int(now.timestamp()),
            "expiresAt": int((now + CONNECTION_TTL).timestamp()),
        }
        self._client.put_item(TableName=self._table, Item=to_attribute_map(item))

    def get(self, connection_id: str, now: datetime) -> ConnectionRecord | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _conn_pk(connection_id)}, "sk": {"S": _META}},
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        item = from_attribute_map(answer["Item"])
        if item["expiresAt"] <= now.timestamp():
            return None
        return ConnectionRecord(
            connection_id=connection_id,
            principal=Principal.from_context(item["principal"]),
            connected_at=item["connectedAt"],
            expires_at=item["expiresAt"],
        )

    def disconnect(self, connection_id: str) -> int:
        """Remove the connection and all its subscriptions; returns how many items went."""
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _conn_pk(connection_id)}},
            "ProjectionExpression": "pk, sk",
        }
        keys: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**query)
            keys.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for start in range(0, len(keys), _BATCH_WRITE_LIMIT):
            self._delete_all(keys[start : start + _BATCH_WRITE_LIMIT])
        return len(keys)

    def _delete_all(self, keys: list[dict[str, Any]]) -> None:
        requests: list[WriteRequestTypeDef] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for _ in range(10):
            answer = self._client.batch_write_item(RequestItems={self._table: requests})
            left = answer.get("UnprocessedItems", {}).get(self._table, [])
            if not left:
                return
            requests = left  # type: ignore[assignment]
        raise RuntimeError(f"{len(requests)} connection items still unprocessed")

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, connection: ConnectionRecord, job_id: str, now: datetime) -> None:
        principal = connection.principal
        key = job_key(principal.tenant_id, job_id)
        item = {
            "pk": _conn_pk(connection.connection_id),
            "sk": f"SUB#{key}",
            "jobKey": key,
            "connectionId": connection.connection_id,
            "tenantId": principal.tenant_id,
            "subject": principal.subject,
            "jobId": job_id,
            "subscribedAt": int(now.timestamp()),
            "expiresAt": connection.expires_at,
        }
        self._client.put_item(TableName=self._table, Item=to_attribute_map(item))

    def unsubscribe(self, connection_id: str, tenant_id: str, job_id: str) -> None:
        self._client.delete_item(
            TableName=self._table,
            Key={
                "pk": {"S": _conn_pk(connection_id)},
                "sk": {"S": f"SUB#{job_key(tenant_id, job_id)}"},
            },
        )

    def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> list[Subscriber]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": "byJob",
            "KeyConditionExpression": "jobKey = :key",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {
                ":key": {"S": job_key(tenant_id, job_id)},
                ":now": {"N": str(int(now.timestamp()))},
            },
        }
        found: list[Subscriber] = []
        while True:
            page = self._client.query(**query)
            for raw in page.get("Items", []):
                item = from_attribute_map(raw)
                found.append(
                    Subscriber(
                        connection_id=item["connectionId"],
                        tenant_id=item["tenantId"],
                        subject=item["subject"],
                        job_id=item["jobId"],
                    )
                )
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- delivery cursors -------------------------------------------------------------------

    def cursor(self, tenant_id: str, subject: str, job_id: str) -> DeliveryCursor | None:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _cursor_pk(tenant_id, subject)}, "sk": {"S": job_id}},
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        item = from_attribute_map(answer["Item"])
        return DeliveryCursor(seq=item["seq"], epoch=item["epoch"])

    def advance_cursor(
        self, tenant_id: str, subject: str, job_id: str, cursor: DeliveryCursor, now: datetime
    ) -> bool:
        """Move the cursor forward only (a new epoch starts over); False if it did not move."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _cursor_pk(tenant_id, subject)}, "sk": {"S": job_id}},
                UpdateExpression="SET seq = :seq, epoch = :epoch, expiresAt = :expires",
                ConditionExpression="attribute_not_exists(seq) OR epoch <> :epoch OR seq < :seq",
                ExpressionAttributeValues={
                    ":seq": {"N": str(cursor.seq)},
                    ":epoch": {"S": cursor.epoch},
                    ":expires": {"N": str(int((now + CURSOR_TTL).timestamp()))},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
