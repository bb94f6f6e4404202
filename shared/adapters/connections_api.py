"""The `@connections` poster: frames to live WebSocket clients through API Gateway's management API.

The one module that talks to `apigatewaymanagementapi`, in the cloud (the stage's
`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` endpoint) and locally (the gateway
emulator's URL). A closed connection answers 410 Gone, which is an outcome, not an error: the
caller drops the connection. Throttling (`LimitExceededException`, 429) and 5xx are retried with
backoff by botocore's standard retry mode, whose fixed list of throttling codes includes
`LimitExceededException` and `TooManyRequestsException` (botocore/retries/standard.py,
`ThrottledRetryableChecker`); whatever still fails after the last attempt is raised.

Payloads are never logged: they are the clients' data.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.services.ports import PostOutcome

GONE_CODE: Final = "GoneException"

# A slow client must not hold a dispatcher thread for long: short timeouts, a few retries.
# Throttling backs off from 1 s (rand(0,1) * 2**(attempt-1), capped at 20 s), so 5 attempts
# wait at most ~15 s in all. `total_max_attempts` counts the first try; botocore's
# `max_attempts` would not (it means retries: max_attempts=5 sends 6 requests).
POSTER_MAX_ATTEMPTS: Final = 5
POSTER_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": POSTER_MAX_ATTEMPTS},
    connect_timeout=2,
    read_timeout=5,
)


class ManagementApiClient(Protocol):
    """The part of boto3's `apigatewaymanagementapi` client the poster uses."""

    def post_to_connection(self, *, Data: bytes, ConnectionId: str) -> object: ...  # noqa: N803


def management_api_client(endpoint_url: str, config: Config = POSTER_CONFIG) -> ManagementApiClient:
    """A client for one WebSocket stage; `endpoint_url` includes the stage path."""
    client: ManagementApiClient = boto3.client(
        "apigatewaymanagementapi", endpoint_url=endpoint_url, config=config
    )
    return client


def _is_gone(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == GONE_CODE or status == HTTPStatus.GONE


class ApiGatewayPoster:
    """`ConnectionPoster` on API Gateway's management API (thread-safe: boto3 clients are)."""

    def __init__(self, client: ManagementApiClient) -> None:
        self._client = client

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        try:
            self._client.post_to_connection(Data=data, ConnectionId=connection_id)
        except ClientError as error:
            if _is_gone(error):
                return PostOutcome.GONE
            raise
        return PostOutcome.DELIVERED
