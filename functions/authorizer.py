"""Lambda authorizer: who may open a WebSocket (`$connect`) or call an HTTP API route.

One verifier for every entry point (`shared.services.auth.Authenticator`): user JWTs and
resume tokens. For a WebSocket `$connect` (REQUEST authorizer) the token comes from `?token=`
or the `Sec-WebSocket-Protocol` header and the answer is an IAM policy; a refusal raises
"Unauthorized", which API Gateway turns into 401. For an HTTP API (payload 2.0, simple
responses) the answer is `isAuthorized`. Either way the verified principal travels on to the
routes in the authorizer context (`Principal.to_context`), never the token.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponseV2,
    APIGatewayAuthorizerResponseWebSocket,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.constants import SERVICE_NAME
from shared.domain.clock import SystemClock
from shared.domain.errors import TetherError
from shared.services.auth import Authenticator, bearer_token, token_from_websocket
from shared.wiring import authenticator as build_authenticator
from shared.wiring import load_auth_settings

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)


@functools.cache
def authenticator() -> Authenticator:
    return build_authenticator(load_auth_settings(), SystemClock())


def authorize_websocket(event: dict[str, Any]) -> dict[str, Any]:
    request = APIGatewayAuthorizerRequestEvent(event)
    credentials = token_from_websocket(request.query_string_parameters, request.headers)
    principal = authenticator().authenticate(credentials.token)
    policy = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        request.method_arn, principal_id=principal.subject, context=principal.to_context()
    )
    policy.allow_all_routes()
    return policy.asdict()


def authorize_http(event: dict[str, Any]) -> dict[str, Any]:
    request = APIGatewayAuthorizerEventV2(event)
    try:
        principal = authenticator().authenticate(bearer_token(request.headers.get("authorization")))
    except TetherError as refusal:
        logger.info("http request refused", extra={"code": refusal.code})
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    return APIGatewayAuthorizerResponseV2(authorize=True, context=principal.to_context()).asdict()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("version") == "2.0":
        return authorize_http(event)
    try:
        return authorize_websocket(event)
    except TetherError as refusal:
        # The reason is logged (never the token); the client only learns "401".
        logger.info("websocket connect refused", extra={"code": refusal.code})
        raise PermissionError("Unauthorized") from None
