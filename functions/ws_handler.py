"""WebSocket API Lambda: `$connect`, `$disconnect` and the client actions (docs/protocol.md).

Thin: Powertools parses the event, `shared.services.websocket.WebSocketSession` decides, and
the frames it returns are posted back through the `@connections` API. `$connect` runs after
the authorizer Lambda verified the token; the verified principal arrives in
`requestContext.authorizer` and is stored with the connection, never the token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.domain.auth import Principal
from shared.domain.envelope import Envelope, MessageType
from shared.domain.errors import Unauthenticated
from shared.services.auth import token_from_websocket
from shared.services.ports import ConnectionPoster, PostOutcome
from shared.services.websocket import WebSocketSession
from shared.wiring import websocket_context

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@dataclass(frozen=True, slots=True)
class WebSocketContext:
    session: WebSocketSession
    poster: ConnectionPoster


@functools.cache
def context() -> WebSocketContext:
    session, poster = websocket_context()
    return WebSocketContext(session=session, poster=poster)


class AuthorizerContext(BaseModel):
    """What the authorizer Lambda put in `requestContext.authorizer` (Principal.to_context)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    tenant_id: str = Field(alias="tenantId")
    subject: str
    scopes: str = ""
    job_id: str = Field(default="", alias="jobId")

    def principal(self) -> Principal:
        return Principal.from_context(self.model_dump(by_alias=True))


def on_connect(event: dict[str, Any]) -> dict[str, Any]:
    parsed = APIGatewayWebSocketConnectEventModel.model_validate(event)
    connection_id = parsed.request_context.connection_id
    try:
        principal = AuthorizerContext.model_validate(
            event["requestContext"].get("authorizer") or {}
        ).principal()
    except ValidationError:
        logger.warning("connect without a verified principal: is the authorizer attached?")
        return {"statusCode": 401}
    context().session.connect(connection_id, principal)
    headers: dict[str, str] = {}
    try:
        credentials = token_from_websocket(event.get("queryStringParameters"), parsed.headers)
        if credentials.subprotocol:
            headers["Sec-WebSocket-Protocol"] = credentials.subprotocol
    except Unauthenticated:
        pass  # the authorizer accepted it; the subprotocol echo is only a courtesy here
    logger.info("connected", extra={"tenant": principal.tenant_id, "resume": principal.is_resume})
    return {"statusCode": 200, "headers": headers}


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    parsed = APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    context().session.disconnect(parsed.request_context.connection_id)
    return {"statusCode": 200}


def _replayed(frame: Envelope) -> int:
    """Log messages a frame answers a subscribe with: a batch of them, or one with its seq."""
    if frame.type is MessageType.BATCH:
        messages = frame.data.get("messages")
        return len(messages) if isinstance(messages, list) else 0
    return 1 if frame.seq is not None else 0


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    parsed = APIGatewayWebSocketMessageEventModel.model_validate(event)
    connection_id = parsed.request_context.connection_id
    body = parsed.body if isinstance(parsed.body, str) else None
    frames = context().session.receive(connection_id, body)
    # One job per client frame (subscribe, ack, cancel): its id is the logs' correlation id.
    job_ids = {frame.job_id for frame in frames if frame.job_id}
    logger.set_correlation_id(job_ids.pop() if len(job_ids) == 1 else None)
    sent = 0
    for frame in frames:
        if context().poster.post(connection_id, frame.to_json().encode()) is PostOutcome.GONE:
            context().session.disconnect(connection_id)
            metrics.add_metric(name="ConnectionsGone", unit=MetricUnit.Count, value=1)
            break
        sent += 1
    metrics.add_metric(name="FramesSent", unit=MetricUnit.Count, value=sent)
    replayed = sum(_replayed(frame) for frame in frames[:sent])
    if replayed:
        metrics.add_metric(name="MessagesReplayed", unit=MetricUnit.Count, value=replayed)
    return {"statusCode": 200}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    match event.get("requestContext", {}).get("eventType"):
        case "CONNECT":
            return on_connect(event)
        case "DISCONNECT":
            return on_disconnect(event)
        case "MESSAGE":
            return on_message(event)
        case other:
            logger.warning("unexpected event type", extra={"eventType": other})
            return {"statusCode": 400}
