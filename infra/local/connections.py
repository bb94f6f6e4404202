"""The local gateway's live WebSocket connections and the `@connections` API that reaches them.

`LiveConnection` is one client's socket as the gateway keeps it. Frames reach it in the order
API Gateway's clients rely on: while the WebSocket handler runs for one of the client's
messages, frames anyone else posts to the connection (the dispatcher's live ones) are held and
sent after the handler's own, so a `subscribed` reply and its replay come before any live frame
of the subscription it opened. The handler's own posts are told apart by the invocation id its
calls carry (`environments.INVOCATION_HEADER`). A held frame is answered 200 at once, as
API Gateway answers a post it accepted: no poster waits on a client.

`ManagementApi` serves `POST|GET|DELETE /@connections/{id}` in the shapes boto3's
`apigatewaymanagementapi` client parses: only for callers who sign with the stack's
credentials (SigV4, `sigv4`), as IAM requires on AWS; `410 GoneException` for a closed or
unknown connection.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus

from aiohttp import WSCloseCode, web
from aws_lambda_powertools import Logger
from botocore.credentials import ReadOnlyCredentials

from infra.local.environments import INVOCATION_HEADER
from infra.local.sigv4 import SignatureRefused, SignedRequest, verify

logger = Logger(service="tether-local")


@dataclass
class LiveConnection:
    socket: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    running: str | None = None  # request id of the handler invocation for this client's message
    held: list[bytes] = field(default_factory=list)  # others' frames posted meanwhile, in order

    def touch(self) -> None:
        self.last_active = time.time()

    async def deliver(self, data: bytes, poster: str | None) -> None:
        """Send a posted frame now, or hold it if it is not the running handler's own."""
        others = self.running is not None and poster != self.running
        flushing = self.running is None and self.held
        if others or flushing:  # while held ones are flushed, new ones queue behind them
            self.held.append(data)
            return
        await _send(self.socket, data)
        self.touch()

    async def flush(self) -> None:
        """After the handler's frames: the held ones, in the order they were posted."""
        while self.held:
            data = self.held[0]
            try:
                await _send(self.socket, data)
            except (ConnectionError, RuntimeError):
                self.held.clear()  # closed: the log keeps them for the client's next subscribe
                return
            del self.held[0]
            self.touch()


class ManagementApi:
    """`@connections/{id}` over the gateway's live connections."""

    def __init__(
        self,
        connections: Mapping[str, LiveConnection],
        credentials: ReadOnlyCredentials,
        message_bytes: int,
    ) -> None:
        self._connections = connections
        self._credentials = credentials  # what callers must sign with
        self._message_bytes = message_bytes

    async def handle(self, request: web.Request) -> web.StreamResponse:
        connection_id = request.match_info["connection_id"]
        body = await request.read()
        signed = SignedRequest(
            method=request.method,
            url=f"{request.scheme}://{request.host}{request.raw_path}",
            headers={name.lower(): request.headers.getall(name) for name in request.headers},
            body=body,
        )
        try:
            verify(signed, self._credentials, datetime.now(UTC))
        except SignatureRefused as refused:
            logger.warning("@connections call refused", extra={"code": refused.code})
            return _aws_error(HTTPStatus.FORBIDDEN, refused.code, refused.message)
        connection = self._connections.get(connection_id)
        if connection is None or connection.socket.closed:
            return _aws_error(HTTPStatus.GONE, "GoneException", f"{connection_id} is gone")
        match request.method:
            case "POST":
                return await self._post(connection, body, request.headers.get(INVOCATION_HEADER))
            case "GET":
                return web.json_response(
                    {
                        "connectedAt": _iso(connection.connected_at),
                        "lastActiveAt": _iso(connection.last_active),
                        "identity": {
                            "sourceIp": connection.source_ip,
                            "userAgent": connection.user_agent,
                        },
                    }
                )
            case "DELETE":
                await connection.socket.close(code=WSCloseCode.OK)
                return web.Response(status=HTTPStatus.NO_CONTENT)
            case _:
                return _aws_error(HTTPStatus.METHOD_NOT_ALLOWED, "BadRequestException", "method")

    async def _post(
        self, connection: LiveConnection, data: bytes, poster: str | None
    ) -> web.StreamResponse:
        if len(data) > self._message_bytes:
            return _aws_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "PayloadTooLargeException",
                f"{len(data)} bytes: a message is at most {self._message_bytes}",
            )
        try:
            await connection.deliver(data, poster)
        except (ConnectionError, RuntimeError):
            return _aws_error(HTTPStatus.GONE, "GoneException", "the connection closed")
        return web.Response(status=HTTPStatus.OK)


async def _send(socket: web.WebSocketResponse, data: bytes) -> None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        await socket.send_bytes(data)
    else:
        await socket.send_str(text)


def _aws_error(status: HTTPStatus, code: str, message: str) -> web.Response:
    return web.json_response(
        {"message": message}, status=status, headers={"x-amzn-ErrorType": code}
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
