"""Execution environments in the local stack (infra/local/environments.py).

A `LocalFunction` runs its handler with the invocation's request id known on that thread, and
the `@connections` calls the handler makes carry that id (signed), so the gateway can tell a
handler's own frames from anyone else's.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders

from infra.local.environments import (
    INVOCATION_HEADER,
    LocalFunction,
    current_request_id,
    mark_management_calls,
)
from infra.local.events import LocalLambdaContext


class _EmptyBody:
    def stream(self) -> list[bytes]:
        return []


class _Sent:
    """Captures each request a client would send, and answers 200 without any network."""

    def __init__(self) -> None:
        self.requests: list[AWSPreparedRequest] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())


def _management_client(sent: _Sent) -> Any:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="http://127.0.0.1:1",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.meta.events.register("before-send.apigatewaymanagementapi", sent)
    return client


def test_the_running_invocation_is_known_on_its_thread_only() -> None:
    seen: list[str | None] = []
    function = LocalFunction("tether-test", lambda _e, _c: seen.append(current_request_id()))
    context = LocalLambdaContext(function_name="tether-test")

    function({}, context)
    other = threading.Thread(target=lambda: seen.append(current_request_id()))
    other.start()
    other.join()

    assert seen == [context.aws_request_id, None]
    assert current_request_id() is None


def test_a_handlers_management_calls_carry_its_invocation_signed() -> None:
    # Given the marker installed before the client is built, as the stack does
    mark_management_calls()
    sent = _Sent()
    client = _management_client(sent)
    context = LocalLambdaContext(function_name="tether-ws-handler")
    post = LocalFunction(
        "tether-ws-handler",
        lambda _e, _c: client.post_to_connection(ConnectionId="c1", Data=b"{}"),
    )

    # When the handler posts, and then someone outside any invocation does
    post({}, context)
    client.post_to_connection(ConnectionId="c1", Data=b"{}")

    # Then only the handler's call names its invocation, inside the signature
    inside, outside = sent.requests
    assert inside.headers[INVOCATION_HEADER] == context.aws_request_id.encode()
    authorization: Any = inside.headers["Authorization"]  # bytes once prepared
    assert INVOCATION_HEADER.lower() in authorization.decode()
    assert INVOCATION_HEADER not in outside.headers


def test_callers_of_one_function_share_its_one_environment() -> None:
    # Given two callers that wrap the same function (the ticker and a test, say)
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow(_event: dict[str, Any], _context: Any) -> None:
        order.append("first in")
        entered.set()
        release.wait(timeout=10)
        order.append("first out")

    first = LocalFunction("tether-shared", slow)
    second = LocalFunction("tether-shared", lambda _e, _c: order.append("second"))
    running = threading.Thread(target=first, args=({}, LocalLambdaContext()))
    running.start()
    entered.wait(timeout=10)

    # When the second caller invokes it while the first event is in progress
    waiting = threading.Thread(target=second, args=({}, LocalLambdaContext()))
    waiting.start()
    release.set()
    running.join()
    waiting.join()

    # Then its event ran after the first one ended, never beside it
    assert order == ["first in", "first out", "second"]
