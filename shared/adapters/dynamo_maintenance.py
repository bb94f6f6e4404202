"""Whole-table reads for the run queue and the hourly cleanup, on DynamoDB.

The run queue is the jobs table's sparse `queue` index: only queued jobs carry its keys,
sorted by "{priority rank}#{createdAt}#{jobId}", so one Query returns a tenant's waiting jobs
highest priority first, oldest first within a priority.

The cleanup's sweeps are Scans with filters, paginated and projected to keys: hourly, and the
jobs scan serves two sweeps (expired terminal jobs, and unfinished jobs whose execution may
have died or whose launch never came). DynamoDB's TTL deletes expired items days late and never
deletes a job's messages with it, which is why this exists at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from shared.adapters.dynamo_limits import scan_all
from shared.domain.models import JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        QueryInputTypeDef,
        ScanInputTypeDef,
        WriteRequestTypeDef,
    )

_BATCH_WRITE_LIMIT: Final = 25
_UNFINISHED: Final = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)
QUEUE_INDEX: Final = "queue"
# Devices whose SNS endpoint was disabled (invalid token) carry `enabled = false`.
DEVICE_ENABLED_ATTRIBUTE: Final = "enabled"


class DynamoRunQueue:
    """`shared.services.ports.RunQueue` on the jobs table's `queue` index."""

    def __init__(self, client: DynamoDBClient, jobs_table: str) -> None:
        self._client = client
        self._table = jobs_table

    def waiting(self, tenant_id: str, *, limit: int) -> list[str]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": QUEUE_INDEX,
            "KeyConditionExpression": "queueTenant = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant_id}},
            "ProjectionExpression": "jobId",
            "Limit": limit,
        }
        return [item["jobId"]["S"] for item in self._client.query(**query).get("Items", [])]

    def tenants_waiting(self) -> set[str]:
        scan: ScanInputTypeDef = {
            "TableName": self._table,
            "IndexName": QUEUE_INDEX,
            "ProjectionExpression": "queueTenant",
        }
        return {item["queueTenant"]["S"] for item in scan_all(self._client, scan)}


class DynamoSweeper:
    """`shared.services.ports.Sweeper`: the scans and deletes of the hourly cleanup."""

    def __init__(
        self, client: DynamoDBClient, *, jobs: str, connections: str, devices: str
    ) -> None:
        self._client = client
        self._jobs = jobs
        self._connections = connections
        self._devices = devices

    def expired_jobs(self, now: datetime) -> list[tuple[str, str]]:
        scan: ScanInputTypeDef = {
            "TableName": self._jobs,
            "FilterExpression": "expiresAt < :now",
            "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
            "ProjectionExpression": "tenantId, jobId",
        }
        return [(i["tenantId"]["S"], i["jobId"]["S"]) for i in scan_all(self._client, scan)]

    def unfinished_jobs(self) -> list[tuple[str, str]]:
        scan: ScanInputTypeDef = {
            "TableName": self._jobs,
            "FilterExpression": "#status IN (:scheduled, :queued, :running, :paused)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                f":{status.value}": {"S": status.value} for status in _UNFINISHED
            },
            "ProjectionExpression": "tenantId, jobId",
        }
        return [(i["tenantId"]["S"], i["jobId"]["S"]) for i in scan_all(self._client, scan)]

    def purge_connections(self, now: datetime) -> int:
        scan: ScanInputTypeDef = {
            "TableName": self._connections,
            "FilterExpression": "expiresAt < :now",
            "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
            "ProjectionExpression": "pk, sk",
        }
        keys = scan_all(self._client, scan)
        self._delete(self._connections, keys)
        return len(keys)

    def purge_disabled_devices(self) -> int:
        scan: ScanInputTypeDef = {
            "TableName": self._devices,
            "FilterExpression": "#enabled = :false",
            "ExpressionAttributeNames": {"#enabled": DEVICE_ENABLED_ATTRIBUTE},
            "ExpressionAttributeValues": {":false": {"BOOL": False}},
            "ProjectionExpression": "ownerKey, deviceId",
        }
        keys = scan_all(self._client, scan)
        self._delete(self._devices, keys)
        return len(keys)

    def _delete(self, table: str, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), _BATCH_WRITE_LIMIT):
            requests: list[WriteRequestTypeDef] = [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH_WRITE_LIMIT]
            ]
            for _ in range(10):
                answer = self._client.batch_write_item(RequestItems={table: requests})
                left = answer.get("UnprocessedItems", {}).get(table, [])
                if not left:
                    break
                requests = left  # type: ignore[assignment]
            else:
                raise RuntimeError(f"{len(requests)} deletes on {table} still unprocessed")
