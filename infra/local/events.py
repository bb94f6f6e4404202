"""API Gateway event shapes for the local stack and the tests.

The local gateway turns real HTTP requests into exactly these events for the same handlers
that run in Lambda; tests build them the same way, so both exercise the cloud's contract.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class LocalLambdaContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str = "tether-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def http_api_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) request event."""
    if isinstance(body, dict):
        body = json.dumps(body)
    encoded = False
    if isinstance(body, bytes):
        raw = body
        try:
            body = raw.decode()
        except UnicodeDecodeError:  # API Gateway passes bytes that are not text as base64
            body, encoded = base64.b64encode(raw).decode(), True
    now = time.time()
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    if body is not None:
        lowered.setdefault("content-type", "application/json")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "queryStringParameters": dict(query) if query else None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", "tether-local"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def websocket_event(
    event_type: str,
    connection_id: str,
    *,
    route_key: str | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    authorizer: dict[str, str] | None = None,
    stage: str = "local",
    domain_name: str = "localhost",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway WebSocket event: CONNECT, MESSAGE or DISCONNECT."""
    now = time.time()
    keys = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}
    context: dict[str, Any] = {
        "routeKey": route_key or keys.get(event_type, "$default"),
        "eventType": event_type,
        "extendedRequestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": int(now * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": "tether-local"},
        "requestId": str(uuid.uuid4()),
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": "local",
    }
    if event_type == "MESSAGE":
        context["messageId"] = str(uuid.uuid4())
    if event_type == "DISCONNECT":
        context["disconnectStatusCode"] = 1000
        context["disconnectReason"] = "Client-side close frame status code"
    if authorizer is not None:
        context["authorizer"] = {**authorizer, "principalId": authorizer.get("subject", "")}
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if event_type in {"CONNECT", "DISCONNECT"}:
        event["headers"] = dict(headers or {})
        event["multiValueHeaders"] = {name: [value] for name, value in (headers or {}).items()}
    if event_type == "CONNECT" and query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = body
    return event


def handler_caches() -> list[Any]:
    """Every handler's cold-start cache (a `functools.cache`d context), in one list.

    The local stack and `tether replay` forget them together when they set a new environment,
    as a new Lambda container would; a handler added to `functions/` is added here once.
    """
    from functions import (  # late: the handlers import what the local stack configures
        authorizer,
        cleanup,
        dispatcher,
        http_api,
        http_devices,
        http_schedules,
        launcher,
        runner,
        ws_handler,
    )
    from shared.adapters.s3_objects import default_s3_objects

    return [
        default_s3_objects,  # csv_import's S3 client: else built lazily, maybe without the endpoint
        http_api.context,
        http_devices.context,
        http_schedules.context,
        ws_handler.context,
        authorizer.authenticator,
        dispatcher.context,
        runner.context,
        launcher.context,
        cleanup.context,
    ]
