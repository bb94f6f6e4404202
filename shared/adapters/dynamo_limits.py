"""The limits table: per-tenant rate limits, run slots and the cleanup's lease.

Rate limits: one atomic counter per tenant, action and window. A fixed window is coarse (a
burst can straddle two windows) but costs one UpdateItem per request and needs no clock
agreement between Lambdas beyond the window's length; that is the right trade for protecting
write paths from a runaway client.

Run slots: one item per tenant holding the *set* of job ids that may run. A slot is taken with
one conditional UpdateItem (`ADD` the job if the set is smaller than the limit or holds it
already) and given back with `DELETE`: both are idempotent, so a retried launch never takes two
slots and a retried finalize never frees someone else's, and cleanup can reconcile exactly
which jobs hold slots (a counter could only be reset).

Lease: one item with an owner and an expiry, taken with a conditional put; the cleanup's last
successful run sits in a second item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import ScanInputTypeDef

SLOTS_PREFIX: Final = "slots#"


def _failed_condition(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int
    remaining: int


class DynamoRateLimiter:
    def __init__(
        self, client: DynamoDBClient, table: str, *, limit: int, window_seconds: int = 60
    ) -> None:
        self._client = client
        self._table = table
        self._limit = limit
        self._window = window_seconds

    def hit(self, tenant_id: str, action: str, now: datetime) -> RateDecision:
        moment = int(now.timestamp())
        window_start = moment - moment % self._window
        window_end = window_start + self._window
        answer = self._client.update_item(
            TableName=self._table,
            Key={"bucket": {"S": f"{tenant_id}#{action}#{window_start}"}},
            UpdateExpression="ADD hits :one SET expiresAt = if_not_exists(expiresAt, :expires)",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":expires": {"N": str(window_end + self._window)},
            },
            ReturnValues="UPDATED_NEW",
        )
        hits = int(answer["Attributes"]["hits"]["N"])
        return RateDecision(
            allowed=hits <= self._limit,
            retry_after_seconds=max(1, window_end - moment),
            remaining=max(0, self._limit - hits),
        )


class DynamoRunSlots:
    """`shared.services.ports.RunSlots`: a tenant's slot holders as a string set."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, tenant_id: str, job_id: str, *, limit: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"bucket": {"S": f"{SLOTS_PREFIX}{tenant_id}"}},
                UpdateExpression="ADD holders :job SET tenantId = :tenant",
                # A per-tenant `maxRunning` on the item overrides the configured default.
                ConditionExpression=(
                    "attribute_not_exists(holders) OR contains(holders, :id)"
                    " OR (attribute_not_exists(maxRunning) AND size(holders) < :limit)"
                    " OR size(holders) < maxRunning"
                ),
                ExpressionAttributeValues={
                    ":job": {"SS": [job_id]},
                    ":id": {"S": job_id},
                    ":tenant": {"S": tenant_id},
                    ":limit": {"N": str(limit)},
                },
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def release(self, tenant_id: str, job_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"bucket": {"S": f"{SLOTS_PREFIX}{tenant_id}"}},
            UpdateExpression="DELETE holders :job",
            ExpressionAttributeValues={":job": {"SS": [job_id]}},
        )

    def holders(self) -> dict[str, set[str]]:
        scan: ScanInputTypeDef = {
            "TableName": self._table,
            "FilterExpression": "begins_with(#bucket, :prefix) AND attribute_exists(holders)",
            "ExpressionAttributeNames": {"#bucket": "bucket"},  # a reserved word
            "ExpressionAttributeValues": {":prefix": {"S": SLOTS_PREFIX}},
            "ConsistentRead": True,
        }
        found: dict[str, set[str]] = {}
        for item in scan_all(self._client, scan):
            found[item["tenantId"]["S"]] = set(item["holders"].get("SS", []))
        return found


class DynamoLease:
    """`shared.services.ports.Lease` on two items: `{name}#lease` and `{name}#state`."""

    def __init__(self, client: DynamoDBClient, table: str, name: str) -> None:
        self._client = client
        self._table = table
        self._lease = {"bucket": {"S": f"{name}#lease"}}
        self._state = {"bucket": {"S": f"{name}#state"}}

    def acquire(self, owner: str, now: datetime, *, seconds: int) -> bool:
        moment = int(now.timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._lease,
                    "owner": {"S": owner},
                    "leaseUntil": {"N": str(moment + seconds)},
                },
                # Free, expired, or ours already. An expiry beyond any sane lease means the
                # clock moved back since it was written: it must not block forever.
                ConditionExpression=(
                    "attribute_not_exists(#bucket) OR leaseUntil < :now OR #owner = :owner"
                    " OR leaseUntil > :horizon"
                ),
                ExpressionAttributeNames={"#owner": "owner", "#bucket": "bucket"},
                ExpressionAttributeValues={
                    ":now": {"N": str(moment)},
                    ":owner": {"S": owner},
                    ":horizon": {"N": str(moment + seconds)},
                },
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def release(self, owner: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._lease,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def last_run(self) -> datetime | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._state, ConsistentRead=True
        ).get("Item")
        if not item or "lastRunAt" not in item:
            return None
        return datetime.fromtimestamp(float(item["lastRunAt"]["N"]), UTC)

    def record_run(self, moment: datetime) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**self._state, "lastRunAt": {"N": str(moment.timestamp())}},
        )


def scan_all(client: DynamoDBClient, scan: ScanInputTypeDef) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.scan(**scan)
        items.extend(page.get("Items", []))
        last = page.get("LastEvaluatedKey")
        if not last:
            return items
        scan["ExclusiveStartKey"] = last
