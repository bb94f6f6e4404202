"""Per-tenant rate limits on DynamoDB: one atomic counter per tenant, action and window.

A fixed window is coarse (a burst can straddle two windows) but costs one UpdateItem per
request and needs no clock agreement between Lambdas beyond the window's length; that is the
right trade for protecting write paths from a runaway client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
