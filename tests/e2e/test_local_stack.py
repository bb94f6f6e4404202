"""The whole system on one machine, over real sockets: HTTP to create, WebSocket to watch.

Every test drives `tether dev`'s stack (tests/e2e/conftest.py) through aiohttp only: jobs run
in moto's Step Functions interpreter, their messages reach the client through the messages
stream, the poller, the dispatcher and the gateway's `@connections` API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import boto3
import pytest

from infra.local.aws import LOCAL_CREDENTIALS, LOCAL_REGION
from infra.local.stack import LocalStack
from tests.e2e.conftest import TokenFactory
from tests.e2e.wire import Api, Watcher

Scenario = Callable[[aiohttp.ClientSession], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await scenario(session)

    asyncio.run(main())


def test_a_500_item_job_is_watched_to_completed_with_every_seq(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        # Given a 500-item job created over HTTP
        api = Api(session, urls, token())
        job_id, resume_token = await api.create_demo(items=500, delay_ms=2)

        # When its resume token watches it from the start
        watcher = await Watcher.connect(session, urls, resume_token, job_id)
        subscribed = await watcher.subscribe(since=0)
        await watcher.until_terminal()

        # Then the client saw it complete, and every seq of the log, with no gap
        final = await api.job(job_id)
        assert subscribed["data"]["recovered"] is True
        assert (watcher.status, final["status"]) == ("completed", "completed")
        assert final["counters"]["succeeded"] == 500
        assert watcher.distinct == list(range(1, final["seq"] + 1))
        assert final["seq"] > 25  # running, one progress per 20-item batch, completed

    run(scenario)


def test_a_dropped_socket_resumes_with_since_and_gets_exactly_what_it_missed(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        api = Api(session, urls, token())
        job_id, resume_token = await api.create_demo(items=500, delay_ms=8)
        first = await Watcher.connect(session, urls, resume_token, job_id)
        await first.subscribe(since=0)
        await first.until(lambda w: len(w.distinct) >= 4)

        # When the client's connection dies mid-run and the job goes on without it
        first.kill()
        seen = max(first.distinct)
        await api.wait_until(job_id, lambda s: s["seq"] >= seen + 3)

        # and it comes back with the last seq it processed
        second = await Watcher.connect(session, urls, resume_token, job_id)
        subscribed = await second.subscribe(since=seen)
        await second.until_terminal()

        # Then it got exactly the seqs after `since`: the missed ones replayed, then the live
        # ones, ending completed
        final = await api.job(job_id)
        assert subscribed["data"]["recovered"] is True
        assert subscribed["data"]["replayed"] >= 3
        assert min(second.seqs) == seen + 1
        assert second.distinct == list(range(seen + 1, final["seq"] + 1))
        assert second.status == "completed"
        replayed = [f for f in second.frames if f["type"] == "batch"]
        assert replayed
        assert replayed[0]["data"]["messages"][0]["seq"] == seen + 1

    run(scenario)


def test_a_client_whose_since_expired_is_told_to_resync(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        # Given a finished job whose first messages have outlived the log's 24 h
        api = Api(session, urls, token())
        job_id, resume_token = await api.create_demo(items=60, delay_ms=0)
        await api.wait_until(job_id, lambda s: s["status"] == "completed")
        _age_messages(stack, "acme", job_id, up_to_seq=3)

        # When a client comes back with since = 1
        watcher = await Watcher.connect(session, urls, resume_token, job_id)
        subscribed = await watcher.subscribe(since=1)
        resync = await watcher.next_of("resync")

        # Then it is told honestly that the log cannot fill its gap, and gets the state instead
        assert subscribed["data"]["recovered"] is False
        assert resync["data"]["status"] == "completed"
        assert resync["data"]["counters"]["succeeded"] == 60

    run(scenario)


def test_cancel_over_the_socket_ends_the_running_job(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        user_token = token()
        api = Api(session, urls, user_token)
        job_id, _ = await api.create_demo(items=500, delay_ms=20)
        watcher = await Watcher.connect(session, urls, user_token, job_id)
        await watcher.subscribe(since=0)
        await watcher.until(lambda w: w.status == "running")

        # When the user cancels over the WebSocket
        await watcher.send("cancel")
        await watcher.until_terminal()

        # Then the job ends cancelled, and the client saw it live
        final = await api.job(job_id)
        assert (watcher.status, final["status"]) == ("cancelled", "cancelled")
        assert final["counters"]["processed"] < 500

    run(scenario)


def test_a_token_this_stack_did_not_issue_is_refused_at_connect(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls
    forged = token(tenant="acme", secret="another-tenants-issuer-secret-0123456789")

    async def scenario(session: aiohttp.ClientSession) -> None:
        # When a token signed by someone else is offered as a subprotocol or in the query
        attempts: list[tuple[str, dict[str, Any]]] = [
            (urls.ws_url, {"protocols": ("tether.v2", f"bearer.{forged}")}),
            (f"{urls.ws_url}?token={forged}", {}),
        ]
        for url, offered in attempts:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, **offered)
            # Then the handshake is refused before any socket opens
            assert refused.value.status == 401

    run(scenario)


def test_another_tenants_user_cannot_watch_a_job(stack: LocalStack, token: TokenFactory) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        api = Api(session, urls, token(tenant="acme"))
        job_id, _ = await api.create_demo(items=40, delay_ms=0)

        # When a user of another tenant connects and asks for acme's job
        intruder = await Watcher.connect(session, urls, token(tenant="globex"), job_id)
        await intruder.send("subscribe", since=0)
        answer = await intruder.next_of("error")

        # Then the job does not exist for them (never 403), and nothing of it reaches them
        assert answer["data"]["code"] == "job_not_found"
        await api.wait_until(job_id, lambda s: s["status"] == "completed")
        assert intruder.seqs == []

    run(scenario)


def test_the_dispatcher_stopped_and_restarted_mid_job_loses_nothing(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    assert stack.poller is not None
    urls, poller = stack.urls, stack.poller

    async def scenario(session: aiohttp.ClientSession) -> None:
        api = Api(session, urls, token())
        job_id, resume_token = await api.create_demo(items=500, delay_ms=6)
        watcher = await Watcher.connect(session, urls, resume_token, job_id)
        await watcher.subscribe(since=0)
        await watcher.until(lambda w: len(w.distinct) >= 3)

        # When the stream poller (the dispatcher's trigger) stops while the job writes on
        await asyncio.to_thread(poller.stop)
        stopped_at = (await api.job(job_id))["seq"]
        await api.wait_until(job_id, lambda s: s["seq"] >= stopped_at + 4)
        await asyncio.to_thread(poller.start)
        await watcher.until_terminal()

        # Then the client still saw every seq, live, without having to reconnect
        final = await api.job(job_id)
        assert final["status"] == "completed"
        assert watcher.distinct == list(range(1, final["seq"] + 1))

    run(scenario)


def _management(stack: LocalStack, *, secret: str | None = None) -> Any:
    """A boto3 `@connections` client signing with the stack's credentials, as its handlers do
    (or with another secret key, as someone who only guessed it would)."""
    assert stack.urls is not None
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=stack.urls.management_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=secret or LOCAL_CREDENTIALS["aws_secret_access_key"],
    )


def test_the_management_api_answers_410_for_unknown_connections(stack: LocalStack) -> None:
    client = _management(stack)

    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="nobody", Data=b"{}")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="nobody")


def test_the_management_api_reaches_a_live_socket(stack: LocalStack, token: TokenFactory) -> None:
    assert stack.urls is not None
    urls = stack.urls
    client = _management(stack)

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(urls.ws_url, protocols=("tether.v2", f"bearer.{token()}")):
            connection_id = await _only_connection(stack)
            info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
            assert info["Identity"]["SourceIp"] == "127.0.0.1"
            too_big = b"x" * (128 * 1024 + 1)
            with pytest.raises(client.exceptions.PayloadTooLargeException):
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=connection_id, Data=too_big
                )
            await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(
                client.post_to_connection, ConnectionId=connection_id, Data=b"{}"
            )

    run(scenario)


def test_the_management_api_refuses_whoever_lacks_the_stacks_credentials(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls
    forged = _management(stack, secret="guessed")

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(
            urls.ws_url, protocols=("tether.v2", f"bearer.{token()}")
        ) as ws:
            connection_id = await _only_connection(stack)
            # When someone who read a connection id in the logs forges a terminal status for it,
            # unsigned or signed with a guessed secret
            completed = b'{"v":2,"type":"status","data":{"status":"completed"}}'
            url = f"{urls.management_url}/@connections/{connection_id}"
            async with session.post(url, data=completed) as unsigned:
                assert unsigned.status == 403
            with pytest.raises(forged.exceptions.ClientError) as refused:
                await asyncio.to_thread(
                    forged.post_to_connection, ConnectionId=connection_id, Data=completed
                )
            # Then both are refused and the client gets only what the stack sends it
            assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
            await ws.send_json({"action": "ping"})
            assert (await ws.receive_json(timeout=10))["type"] == "pong"

    run(scenario)


def test_a_frame_nested_1000_deep_gets_an_error_frame_and_the_socket_stays(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(
            urls.ws_url, protocols=("tether.v2", f"bearer.{token()}")
        ) as ws:
            # When a client sends 2 KB of brackets nested 1,000 deep
            await ws.send_str("[" * 1000 + "]" * 1000)
            error = await ws.receive_json(timeout=10)
            # Then it is told it sent a bad request, and the connection goes on
            assert (error["type"], error["data"]["code"]) == ("error", "bad_request")
            await ws.send_json({"action": "ping"})
            assert (await ws.receive_json(timeout=10))["type"] == "pong"

    run(scenario)


@pytest.mark.parametrize("size", [32 * 1024 + 1, 128 * 1024 + 1])
def test_messages_over_api_gateways_limits_close_the_socket_with_1009(
    stack: LocalStack, token: TokenFactory, size: int
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        protocols = ("tether.v2", f"bearer.{token()}")
        async with session.ws_connect(urls.ws_url, protocols=protocols) as ws:
            await ws.send_str("x" * size)
            closed = await ws.receive(timeout=10)
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG

    run(scenario)


async def _only_connection(stack: LocalStack) -> str:
    assert stack.gateway is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ids = stack.gateway.connection_ids()
        if len(ids) == 1:
            return ids[0]
        await asyncio.sleep(0.01)
    raise AssertionError("expected exactly one open connection")


def _age_messages(stack: LocalStack, tenant: str, job_id: str, up_to_seq: int) -> None:
    """What 24 hours do to the log: the first messages expire (readers filter on expiresAt)."""
    client: Any = stack.aws.dynamodb()
    for seq in range(1, up_to_seq + 1):
        client.update_item(
            TableName=stack.tables["messages"],
            Key={"jobKey": {"S": f"{tenant}#{job_id}"}, "seq": {"N": str(seq)}},
            UpdateExpression="SET expiresAt = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )


def test_a_query_token_connects_without_a_subprotocol(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        # When a client that cannot set subprotocols passes its token in the query
        async with session.ws_connect(f"{urls.ws_url}?token={token()}") as ws:
            await ws.send_json({"action": "ping"})
            pong = await ws.receive_json(timeout=10)

        # Then the socket opens with no subprotocol echoed, and actions are answered
        assert ws.protocol is None
        assert pong["type"] == "pong"

    run(scenario)


def test_a_job_nobody_watched_end_is_pushed_to_the_owners_device(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> str:
        # Given a user's registered iPhone and a job they do not watch
        api = Api(session, urls, token(user="pushed"))
        status, _ = await api.call("POST", "/devices", {"platform": "ios", "token": "c3" * 32})
        assert status in (200, 201)
        job_id, _ = await api.create_demo(items=30, delay_ms=0)

        # When the job completes and nobody acknowledges it live
        await api.wait_until(job_id, lambda s: s["pushAttempts"] != [])
        return job_id

    job_id = asyncio.run(_with_session(scenario))

    # Then the local push sink shows what APNs would have received for it
    deliveries = stack.push_sink.sink.for_job(job_id)
    assert [d.platform.value for d in deliveries] == ["ios"]
    assert deliveries[0].payload["aps"]["alert"]["title"]


async def _with_session(scenario: Callable[[aiohttp.ClientSession], Awaitable[str]]) -> str:
    async with aiohttp.ClientSession() as session:
        return await scenario(session)


def test_a_job_scheduled_for_later_is_started_by_the_ticker(
    stack: LocalStack, token: TokenFactory
) -> None:
    assert stack.urls is not None
    urls = stack.urls

    async def scenario(session: aiohttp.ClientSession) -> None:
        # Given a job created for two seconds from now
        api = Api(session, urls, token())
        later = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        body = {
            "type": "demo",
            "params": {"items": 20},
            "schedule": {"scheduledFor": later.isoformat().replace("+00:00", "Z")},
        }
        status, created = await api.call("POST", "/jobs", body)
        assert (status, created["job"]["status"]) == (202, "scheduled")

        # When its time comes, the ticker fires its EventBridge Scheduler schedule
        job_id = created["job"]["jobId"]
        final = await api.wait_until(job_id, lambda s: s["status"] == "completed")

        # Then the launcher started it and it ran to the end
        assert final["counters"]["succeeded"] == 20

    run(scenario)
