"""The local API Gateway: real HTTP and real WebSocket on localhost, for the same handlers.

One aiohttp server plays the three faces of API Gateway that Tether uses (docs/local-stack.md):

* the HTTP API: every request becomes a payload-2.0 event for `functions.http_api.handler`;
* the WebSocket API (`/ws`): `$connect` runs the authorizer (token from `?token=` or the
  `tether.v2, bearer.<token>` subprotocols), then the handler's `$connect`, and upgrades only if
  both agree, echoing the subprotocol the handler chose; each client message becomes a route
  event (route key from `$request.body.action`, else `$default`); closing runs `$disconnect`.
  API Gateway's limits hold: a message over 128 KB or a frame over 32 KB closes the socket with
  1009, and idle (10 min) and old (2 h) connections are closed;
* the `@connections` management API (`POST|GET|DELETE /@connections/{id}`, `connections`),
  for callers signing with the stack's credentials, so the dispatcher's and the handler's posts
  reach real sockets, the handler's own frames before others' posted while it runs.

Handlers are synchronous, like Lambda: they run in a thread pool, never on the event loop, and
each function takes one event at a time (`environments`). A handler that fails answers as API
Gateway does: an `Internal server error` frame (WebSocket) or a 500 (HTTP), the connection kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, get_args

import pydantic_core
from aiohttp import WSCloseCode, WSMsgType, web
from aws_lambda_powertools import Logger
from botocore.credentials import ReadOnlyCredentials
from multidict import CIMultiDictProxy

from infra.cors import CorsPolicy
from infra.local.connections import LiveConnection, ManagementApi
from infra.local.environments import Handler, LocalFunction
from infra.local.events import LocalLambdaContext, http_api_event, websocket_event
from shared.domain.actions import Ack, Cancel, Ping, Subscribe, Unsubscribe

WS_PATH: Final = "/ws"
CONNECTIONS_PATH: Final = "/@connections"
MESSAGE_LIMIT_BYTES: Final = 128 * 1024  # API Gateway WebSocket: message payload
FRAME_LIMIT_BYTES: Final = 32 * 1024  # API Gateway WebSocket: one frame
IDLE_TIMEOUT_SECONDS: Final = 10 * 60
MAX_CONNECTION_SECONDS: Final = 2 * 3600
HTTP_PAYLOAD_LIMIT_BYTES: Final = 10 * 1024 * 1024  # HTTP API request payload
ROUTE_KEYS: Final = frozenset(
    get_args(model.model_fields["action"].annotation)[0]
    for model in (Subscribe, Unsubscribe, Ack, Cancel, Ping)
)

logger = Logger(service="tether-local")


@dataclass(frozen=True)
class GatewayHandlers:
    """The Lambda handlers behind the gateway; the real ones unless a test swaps them."""

    http: Handler
    authorizer: Handler
    websocket: Handler

    @classmethod
    def real(cls) -> GatewayHandlers:
        from functions import authorizer, http_api, ws_handler

        return cls(
            http=http_api.handler, authorizer=authorizer.handler, websocket=ws_handler.handler
        )


@dataclass(frozen=True)
class GatewayLimits:
    idle_seconds: float = IDLE_TIMEOUT_SECONDS
    max_connection_seconds: float = MAX_CONNECTION_SECONDS
    message_bytes: int = MESSAGE_LIMIT_BYTES
    frame_bytes: int = FRAME_LIMIT_BYTES


class Gateway:
    """The aiohttp application; `LocalStack` runs it on its event loop."""

    def __init__(
        self,
        handlers: GatewayHandlers,
        executor: ThreadPoolExecutor,
        *,
        credentials: ReadOnlyCredentials,
        stage: str = "local",
        limits: GatewayLimits | None = None,
        routes: Sequence[web.RouteDef] = (),
        cors: CorsPolicy | None = None,
    ) -> None:
        self._http_api = LocalFunction("tether-http-api", handlers.http)
        self._authorizer = LocalFunction("tether-authorizer", handlers.authorizer)
        self._ws_handler = LocalFunction("tether-ws-handler", handlers.websocket)
        self._cors = cors  # None: same-origin callers only, as an API without CORS
        self._executor = executor
        self._stage = stage
        self._limits = limits or GatewayLimits()
        self._connections: dict[str, LiveConnection] = {}
        self.app = web.Application(client_max_size=HTTP_PAYLOAD_LIMIT_BYTES)
        self.app.router.add_get(WS_PATH, self._websocket)
        management = ManagementApi(self._connections, credentials, self._limits.message_bytes)
        self.app.router.add_route("*", CONNECTIONS_PATH + "/{connection_id}", management.handle)
        self.app.router.add_routes(routes)  # e.g. the web console; before the API's catch-all
        # Every path, a decoded newline in it too: API Gateway's `$default` route takes them all.
        self.app.router.add_route("*", r"/{tail:[\s\S]*}", self._http)
        self.app.on_shutdown.append(self._close_all)

    def connection_ids(self) -> list[str]:
        return list(self._connections)

    async def _run(
        self,
        function: LocalFunction,
        event: dict[str, Any],
        context: LocalLambdaContext | None = None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        context = context or LocalLambdaContext(function_name=function.name)
        return await loop.run_in_executor(self._executor, function, event, context)

    # -- HTTP API --------------------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        origin = request.headers.get("Origin")
        requested = request.headers.get("Access-Control-Request-Method")
        if self._cors is not None and request.method == "OPTIONS" and requested is not None:
            # A preflight: API Gateway answers it itself, the function never sees it.
            return web.Response(
                status=HTTPStatus.NO_CONTENT, headers=self._cors.preflight(origin, requested)
            )
        raw = await request.read()
        body: str | None = None
        encoded = False
        if raw:
            try:
                body = raw.decode()
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(raw).decode(), True
        event = http_api_event(
            request.method,
            request.path,
            headers=_joined(request.headers),
            body=body,
            source_ip=request.remote or "127.0.0.1",
        )
        # HTTP APIs deliver `rawPath` percent-decoded, like `requestContext.http.path`; the
        # resolver matches routes and path parameters on it.
        event["rawQueryString"] = request.query_string
        event["queryStringParameters"] = _joined(request.query) or None
        event["isBase64Encoded"] = encoded
        try:
            response = _http_response(await self._run(self._http_api, event))
        except Exception:
            logger.exception("http handler failed")  # API Gateway: 500, the function's error hidden
            response = web.json_response(
                {"message": "Internal Server Error"}, status=HTTPStatus.INTERNAL_SERVER_ERROR
            )
        if self._cors is not None:
            response.headers.update(self._cors.response(origin))
        logger.info(
            "http request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

    # -- WebSocket API ---------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        connection_id = secrets.token_urlsafe(12)
        headers = _joined(request.headers)
        query = _joined(request.query)
        source_ip = request.remote or "127.0.0.1"
        authorizer = await self._authorize(connection_id, headers, query)
        if authorizer is None:
            logger.info("websocket refused", extra={"status": 401})
            return _plain(HTTPStatus.UNAUTHORIZED.value)
        connect = websocket_event(
            "CONNECT",
            connection_id,
            headers=headers,
            query=query,
            authorizer=authorizer,
            stage=self._stage,
            source_ip=source_ip,
        )
        answer = await self._run(self._ws_handler, connect)
        status = int(answer.get("statusCode", 200)) if isinstance(answer, dict) else 200
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            logger.info("websocket refused by $connect", extra={"status": status})
            return _plain(status)
        answer_headers = answer.get("headers") or {} if isinstance(answer, dict) else {}
        protocol = {k.lower(): v for k, v in answer_headers.items()}.get("sec-websocket-protocol")
        socket = web.WebSocketResponse(
            protocols=(protocol,) if protocol else (),
            max_msg_size=self._limits.message_bytes,
            autoping=True,
        )
        connection = LiveConnection(socket, source_ip, headers.get("User-Agent", ""))
        try:
            # $connect registered it: from here on, $disconnect must run whatever happens.
            await socket.prepare(request)
            self._connections[connection_id] = connection
            logger.info("websocket connected", extra={"connectionId": connection_id})
            await self._serve(connection_id, connection, authorizer)
        finally:
            self._connections.pop(connection_id, None)
            disconnect = websocket_event(
                "DISCONNECT", connection_id, authorizer=authorizer, stage=self._stage
            )
            await self._run(self._ws_handler, disconnect)
            logger.info(
                "websocket closed", extra={"connectionId": connection_id, "code": socket.close_code}
            )
        return socket

    async def _authorize(
        self, connection_id: str, headers: dict[str, str], query: dict[str, str]
    ) -> dict[str, str] | None:
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:us-east-1:000000000000:local/{self._stage}/$connect",
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {name: [value] for name, value in query.items()},
            "stageVariables": {},
            "requestContext": {
                "routeKey": "$connect",
                "eventType": "CONNECT",
                "connectionId": connection_id,
                "apiId": "local",
                "stage": self._stage,
            },
        }
        try:
            policy = await self._run(self._authorizer, event)
        except PermissionError:
            return None
        statements = policy.get("policyDocument", {}).get("Statement", [])
        if not statements or any(s.get("Effect") != "Allow" for s in statements):
            return None
        context: dict[str, str] = {k: str(v) for k, v in (policy.get("context") or {}).items()}
        return context

    async def _serve(
        self, connection_id: str, connection: LiveConnection, authorizer: dict[str, str]
    ) -> None:
        socket = connection.socket
        async for message in socket:
            connection.touch()
            if message.type is WSMsgType.TEXT:
                data: str = message.data
                body, encoded = data, False
                size = len(data.encode())
            elif message.type is WSMsgType.BINARY:
                body, encoded = base64.b64encode(message.data).decode(), True
                size = len(message.data)
            else:
                break  # an error (e.g. a message over the limit: aiohttp closed with 1009)
            if size > self._limits.frame_bytes:
                # The gateway sees messages, not frames; clients send a message as one frame.
                await socket.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"Frame too big")
                break
            event = websocket_event(
                "MESSAGE",
                connection_id,
                route_key=_route_key(body) if not encoded else "$default",
                body=body,
                authorizer=authorizer,
                stage=self._stage,
                source_ip=connection.source_ip,
            )
            event["isBase64Encoded"] = encoded
            await self._message(connection_id, connection, event)

    async def _message(
        self, connection_id: str, connection: LiveConnection, event: dict[str, Any]
    ) -> None:
        """One client message through the handler; others' frames wait until it is done."""
        context = LocalLambdaContext(function_name=self._ws_handler.name)
        connection.running = context.aws_request_id
        try:
            await self._run(self._ws_handler, event, context)
        except Exception:
            # API Gateway tells the client and keeps the connection; the log has the error.
            logger.exception("websocket handler failed", extra={"connectionId": connection_id})
            failed = {
                "message": "Internal server error",
                "connectionId": connection_id,
                "requestId": context.aws_request_id,
            }
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.deliver(json.dumps(failed).encode(), context.aws_request_id)
        finally:
            connection.running = None
            await connection.flush()

    async def expire_connections(self) -> None:
        """Close idle and old connections, as API Gateway does."""
        now = time.time()
        for connection in list(self._connections.values()):
            idle = now - connection.last_active > self._limits.idle_seconds
            old = now - connection.connected_at > self._limits.max_connection_seconds
            if idle or old:
                await connection.socket.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")

    async def _close_all(self, _app: web.Application) -> None:
        await self.close_connections()

    async def close_connections(self) -> None:
        """Close every socket from the server side (a shutdown, or an outage in a test)."""
        for connection in list(self._connections.values()):
            await connection.socket.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")


def _joined(values: CIMultiDictProxy[str] | Mapping[str, str]) -> dict[str, str]:
    """API Gateway joins repeated headers and query parameters with commas."""
    joined: dict[str, str] = {}
    for name, value in values.items():
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _route_key(body: str) -> str:
    """`$request.body.action`, or `$default` when the body cannot say (API Gateway's rule).

    pydantic's parser bounds nesting depth (an error, where `json` would overflow the stack)."""
    try:
        parsed = pydantic_core.from_json(body)
    except (ValueError, TypeError):
        return "$default"
    action = parsed.get("action") if isinstance(parsed, dict) else None
    return action if isinstance(action, str) and action in ROUTE_KEYS else "$default"


def _http_response(answer: Any) -> web.Response:
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # HTTP API's payload 2.0 shortcut: any other JSON is a 200 with that body.
        return web.json_response(answer)
    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode()
    response = web.Response(status=int(answer["statusCode"]), body=body)
    for name, value in (answer.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in answer.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def _plain(status: int) -> web.Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Refused"
    return web.json_response({"message": phrase}, status=status)
