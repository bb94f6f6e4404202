"""The local gateway (infra/local/gateway.py) over real sockets, with stand-in handlers.

What API Gateway and Lambda guarantee and the gateway must too: a function handles one event
at a time; the `@connections` API answers only SigV4-signed calls with the stack's credentials;
a hostile or failing message never kills a connection; and frames others post to a connection
while the handler runs for it follow the handler's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import boto3
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from infra.local.aws import LOCAL_CREDENTIALS, LOCAL_REGION, local_credentials
from infra.local.environments import mark_management_calls
from infra.local.gateway import Gateway, GatewayHandlers

Handler = Callable[[dict[str, Any], Any], Any]
ALLOW: Final = {
    "principalId": "alice",
    "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke"}]},
    "context": {"tenantId": "acme", "subject": "alice"},
}


def allow(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return ALLOW


def ok(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return {"statusCode": 200}


@dataclass
class Served:
    url: str
    gateway: Gateway
    session: aiohttp.ClientSession

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def management(self, **credentials: str) -> Any:
        """A boto3 `@connections` client of this gateway; the stack's credentials by default."""
        keys = credentials or LOCAL_CREDENTIALS
        return boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=self.url,
            region_name=LOCAL_REGION,
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
        )

    async def only_connection(self) -> str:
        while not self.gateway.connection_ids():  # registered right after the upgrade
            await asyncio.sleep(0)
        (connection_id,) = self.gateway.connection_ids()
        return connection_id


@contextlib.asynccontextmanager
async def serving(
    http: Handler = ok, websocket: Handler = ok, workers: int = 8
) -> AsyncIterator[Served]:
    mark_management_calls()  # as the stack does, before any handler's client exists
    executor = ThreadPoolExecutor(workers)
    handlers = GatewayHandlers(http=http, authorizer=allow, websocket=websocket)
    gateway = Gateway(handlers, executor, credentials=local_credentials())
    runner = web.AppRunner(gateway.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(f"http://{host}:{port}", gateway, session)
    finally:
        await runner.cleanup()
        executor.shutdown(wait=True)


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout=60))


# -- one event at a time --------------------------------------------------------------------


@dataclass
class SharedStateHandler:
    """Like Powertools' resolver: the current event lives on the module's app object."""

    current: dict[str, Any] | None = None
    active: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.current = event
        time.sleep(0)  # let other threads run here, as a real handler's I/O does
        answer = {"statusCode": 200, "body": self.current["rawPath"]}
        with self.lock:
            self.active -= 1
        return answer


def test_the_http_function_takes_one_request_at_a_time() -> None:
    handler = SharedStateHandler()

    async def scenario() -> None:
        async with serving(http=handler, workers=16) as served:
            # When 100 requests arrive at once
            async def get(n: int) -> str:
                async with served.session.get(f"{served.url}/r/{n}") as answer:
                    return await answer.text()

            answers = await asyncio.gather(*(get(n) for n in range(100)))

        # Then each got its own answer: the handler never saw two events at once
        assert answers == [f"/r/{n}" for n in range(100)]
        assert handler.peak == 1

    run(scenario())


def test_a_failing_http_handler_answers_api_gateways_500() -> None:
    def failing(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    async def scenario() -> None:
        async with (
            serving(http=failing) as served,
            served.session.get(served.url + "/jobs") as answer,
        ):
            assert answer.status == 500
            assert await answer.json() == {"message": "Internal Server Error"}

    run(scenario())


def test_the_http_function_gets_every_path_decoded_as_api_gateway_delivers_it() -> None:
    # API Gateway HTTP APIs hand the function `rawPath` percent-decoded (payload 2.0), which is
    # what Powertools' resolver matches its routes and path parameters against.
    seen: list[tuple[str, str]] = []

    def recording(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen.append((event["rawPath"], event["requestContext"]["http"]["path"]))
        return {"statusCode": 200}

    async def scenario() -> None:
        async with serving(http=recording) as served:
            # When ids with reserved characters arrive encoded, one with an encoded newline too
            for path in ("/jobs/a%7Cb%3Ac%40d/cancel", "/jobs/x%0Ay", "/jobs/%C3%A9"):
                async with served.session.post(served.url + path) as answer:
                    assert answer.status == 200, path

        # Then every one reached the function, decoded
        decoded = ["/jobs/a|b:c@d/cancel", "/jobs/x\ny", "/jobs/\u00e9"]
        assert seen == [(path, path) for path in decoded]

    run(scenario())


# -- hostile and failing messages ------------------------------------------------------------


@dataclass
class RecordingWebSocket:
    """Records the route of each message; raises on the ones it is told to."""

    routes: list[str] = field(default_factory=list)
    handled: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    fail_on: str = "explode"

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        if event["requestContext"]["eventType"] == "MESSAGE":
            self.routes.append(event["requestContext"]["routeKey"])
            self.handled.release()
            if self.fail_on in (event.get("body") or ""):
                raise RuntimeError("the handler failed")
        return {"statusCode": 200}

    async def messages(self, count: int) -> list[str]:
        """The routes of the first `count` messages, once the handler has had them."""
        for _ in range(count):
            assert await asyncio.to_thread(self.handled.acquire, timeout=10)
        return self.routes


def test_a_deeply_nested_frame_is_routed_to_default_and_the_connection_stays_open() -> None:
    handler = RecordingWebSocket()
    deep = "[" * 1000 + "]" * 1000  # 2 KB

    async def scenario() -> None:
        async with served_socket(handler) as (_, ws):
            # When a client sends a frame nested 1,000 deep, then a ping
            await ws.send_str(deep)
            await ws.send_str('{"action":"ping"}')
            # Then both reached the handler ($default: the body names no action) and the
            # socket is still open
            assert await handler.messages(2) == ["$default", "ping"]
            assert not ws.closed

    run(scenario())


def test_a_failing_websocket_handler_answers_internal_server_error_and_keeps_the_socket() -> None:
    handler = RecordingWebSocket()

    async def scenario() -> None:
        async with served_socket(handler) as (served, ws):
            connection_id = await served.only_connection()
            # When the handler fails on a message
            await ws.send_str('{"action":"explode"}')
            error = await ws.receive_json(timeout=10)
            # Then the client is told as API Gateway tells it, and the next message goes through
            assert error["message"] == "Internal server error"
            assert error["connectionId"] == connection_id
            await ws.send_str('{"action":"ping"}')
            assert await handler.messages(2) == ["$default", "ping"]
            assert not ws.closed

    run(scenario())


@contextlib.asynccontextmanager
async def served_socket(
    websocket: Handler,
) -> AsyncIterator[tuple[Served, aiohttp.ClientWebSocketResponse]]:
    async with (
        serving(websocket=websocket) as served,
        served.session.ws_connect(served.ws_url) as ws,
    ):
        yield served, ws


# -- @connections: the stack's credentials only ---------------------------------------------


def test_management_calls_need_the_stacks_signature() -> None:
    async def scenario() -> None:
        async with served_socket(ok) as (served, ws):
            connection_id = await served.only_connection()
            path = f"{served.url}/@connections/{connection_id}"

            # When someone who knows the connection id calls without signing
            for method in ("POST", "GET", "DELETE"):
                async with served.session.request(method, path, data=b"forged") as answer:
                    assert answer.status == 403
                    assert answer.headers["x-amzn-ErrorType"] == (
                        "MissingAuthenticationTokenException"
                    )

            # or signs with another secret, or another access key
            forged = served.management(
                aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
                aws_secret_access_key="not-the-stacks-secret",
            )
            stranger = served.management(
                aws_access_key_id="AKIASTRANGER", aws_secret_access_key="whatever"
            )
            refusals = []
            for client in (forged, stranger):
                for call in (
                    lambda c=client: c.post_to_connection(ConnectionId=connection_id, Data=b"x"),
                    lambda c=client: c.get_connection(ConnectionId=connection_id),
                    lambda c=client: c.delete_connection(ConnectionId=connection_id),
                ):
                    with pytest.raises(ClientError) as refused:
                        await asyncio.to_thread(call)
                    refusals.append(refused.value.response["Error"]["Code"])

            # Then nothing reached the client, and each was refused with AWS's 403
            assert refusals == 3 * ["InvalidSignatureException"] + 3 * [
                "UnrecognizedClientException"
            ]
            signed = served.management()
            await asyncio.to_thread(
                signed.post_to_connection, ConnectionId=connection_id, Data=b'{"type":"pong"}'
            )
            assert await ws.receive_json(timeout=10) == {"type": "pong"}
            info = await asyncio.to_thread(signed.get_connection, ConnectionId=connection_id)
            assert info["Identity"]["SourceIp"] == "127.0.0.1"

    run(scenario())


# -- order: the handler's own frames first --------------------------------------------------


@dataclass
class SubscribeRace:
    """A subscribe whose subscription the dispatcher sees before the handler has replied."""

    clients: dict[str, Any] = field(default_factory=dict)  # boto3 clients, by function
    live_answers: list[int] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        context = event["requestContext"]
        if context["eventType"] == "MESSAGE":
            connection_id = context["connectionId"]
            # The dispatcher (another function, on its own thread) posts a live frame and is
            # answered before this handler sends its reply and its replay
            dispatcher = threading.Thread(target=self._dispatch, args=(connection_id,))
            dispatcher.start()
            dispatcher.join()
            for frame in (b'{"type":"subscribed"}', b'{"type":"batch"}'):
                self.clients["handler"].post_to_connection(ConnectionId=connection_id, Data=frame)
        return {"statusCode": 200}

    def _dispatch(self, connection_id: str) -> None:
        answer = self.clients["dispatcher"].post_to_connection(
            ConnectionId=connection_id, Data=b'{"type":"progress","seq":5}'
        )
        self.live_answers.append(answer["ResponseMetadata"]["HTTPStatusCode"])


def test_a_live_frame_posted_while_the_handler_runs_follows_the_handlers_own_frames() -> None:
    handler = SubscribeRace()

    async def scenario() -> None:
        async with served_socket(handler) as (served, ws):
            handler.clients.update(dispatcher=served.management(), handler=served.management())
            # When the client subscribes and the dispatcher races the reply
            await ws.send_str('{"action":"subscribe","jobId":"j1"}')
            received = [(await ws.receive_json(timeout=10))["type"] for _ in range(3)]
            # Then the reply and its replay reach the client first, the live frame after them
            assert received == ["subscribed", "batch", "progress"]
            assert handler.live_answers == [200]

    run(scenario())
