"""The Python client against a scripted server over real sockets (docs/protocol.md).

Every test scripts the server connection by connection and asserts what the client did:
which seqs it showed (once each, in order), what it subscribed with, what it acked, how long
it would have waited between reconnects (sleep is injected, nothing really waits).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.client.policy import Backoff, WatchPolicy
from infra.client.updates import (
    Finished,
    GaveUp,
    JobGone,
    Progress,
    Reconnecting,
    Resynced,
    ServerError,
    StatusChanged,
    Subscribed,
    WatchUpdate,
)
from infra.client.watcher import TetherClient
from shared.domain.models import JobStatus
from tests.integration.fake_tether import (
    JOB,
    FakeSocket,
    FakeTether,
    batch,
    error,
    job_state,
    pong,
    problem_reply,
    progress,
    resync,
    status,
    subscribed,
)

COMPLETED = JobStatus.COMPLETED
RUNNING = JobStatus.RUNNING


class RecordingSleep:
    """Injected sleep: remembers each wait, returns at once, can run a hook on a given call."""

    def __init__(self, on_call: dict[int, Callable[[], None]] | None = None) -> None:
        self.waits: list[float] = []
        self._on_call = on_call or {}

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        hook = self._on_call.get(len(self.waits))
        if hook is not None:
            hook()
        await asyncio.sleep(0)


@pytest.fixture
def server() -> Iterator[FakeTether]:
    fake = FakeTether().start()
    yield fake
    fake.stop()


def watch(
    server: FakeTether,
    *,
    policy: WatchPolicy | None = None,
    sleep: RecordingSleep | None = None,
    token_in_query: bool = False,
    client_hook: Callable[[TetherClient], None] | None = None,
) -> list[WatchUpdate]:
    async def run() -> list[WatchUpdate]:
        async with TetherClient(
            http_url=server.http_url,
            ws_url=server.ws_url,
            token="user-token",
            policy=policy,
            sleep=sleep or RecordingSleep(),
            token_in_query=token_in_query,
        ) as client:
            if client_hook is not None:
                client_hook(client)
            return [update async for update in client.watch(JOB)]

    updates = asyncio.run(asyncio.wait_for(run(), timeout=20))
    server.settle()
    return updates


def shown_seqs(updates: list[WatchUpdate]) -> list[int]:
    return [u.seq for u in updates if isinstance(u, Progress | StatusChanged)]


def test_replay_duplicates_and_a_drop_show_every_seq_once_in_order(server: FakeTether) -> None:
    # Given a first connection that replays 1..3, repeats 3, sends 4, then drops the TCP link
    async def first(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(
            subscribed(head=3, replayed=3),
            batch(status(1, RUNNING), progress(2, 2), progress(3, 4)),
            progress(3, 4),
            progress(4, 6),
        )
        await asyncio.sleep(0.05)
        socket.kill()

    # And a second one that replays from the client's since (4 again, 5, 6) then completes
    async def second(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(
            subscribed(head=6, replayed=3),
            batch(progress(4, 6), progress(5, 8), progress(6, 10)),
            status(7, COMPLETED, result={"processed": 10}),
        )
        await socket.until_closed()

    server.scripts = [first, second]
    sleep = RecordingSleep()

    # When the client watches the job
    updates = watch(server, sleep=sleep)

    # Then every seq was shown once, in order, and the watch ended completed with exact counters
    assert shown_seqs(updates) == [1, 2, 3, 4, 5, 6, 7]
    final = updates[-1]
    assert isinstance(final, Finished)
    assert final.view.status is COMPLETED
    assert (final.view.counters.processed, final.view.counters.total) == (10, 10)
    assert final.view.result == {"processed": 10}
    # And it reconnected once after 1 s, resubscribing from the last seq it had shown
    assert sleep.waits == [1.0]
    assert [u.attempt for u in updates if isinstance(u, Reconnecting)] == [1]
    assert [(i, a.get("since"), a.get("epoch")) for i, a in server.subscribes()] == [
        (0, 0, None),
        (1, 4, "e1"),
    ]
    assert server.acks()[-1] == 7


def test_token_goes_in_the_subprotocols_or_the_query(server: FakeTether) -> None:
    async def finished_job(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, COMPLETED)))
        await socket.until_closed()

    server.scripts = [finished_job, finished_job]

    watch(server)
    watch(server, token_in_query=True)

    assert server.connections == [
        {"protocols": "tether.v2,bearer.user-token", "token": None},
        {"protocols": "tether.v2", "token": "user-token"},
    ]


def test_a_gap_in_live_messages_resubscribes_with_since(server: FakeTether) -> None:
    # Given a replay of 1..2, then live 4 (3 was missed while the subscription propagated)
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=2, replayed=2), batch(status(1, RUNNING), progress(2, 3)))
        await socket.send(progress(4, 9))
        again = await socket.expect("subscribe")
        assert again["since"] == 2
        await socket.send(subscribed(head=4, replayed=2), batch(progress(3, 6), progress(4, 9)))
        await socket.send(status(5, COMPLETED))
        await socket.until_closed()

    server.scripts = [script]
    sleep = RecordingSleep()

    updates = watch(server, sleep=sleep)

    # Then 3 came from the second replay, 4 once, and no reconnect was needed
    assert shown_seqs(updates) == [1, 2, 3, 4, 5]
    assert [(i, a["since"]) for i, a in server.subscribes()] == [(0, 0), (0, 2)]
    assert sleep.waits == []
    assert isinstance(updates[-1], Finished)


def test_reconnects_back_off_1_2_4_8_16_then_give_up_with_a_state_sync(
    server: FakeTether,
) -> None:
    # Given a connection that drops, after which the WebSocket refuses everything with 503
    async def drops(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, RUNNING)))
        await socket.close()

    server.scripts = [drops]
    server.state = job_state(seq=4, processed=3)
    sleep = RecordingSleep()

    # When the client watches
    updates = watch(server, sleep=sleep)

    # Then it tried 5 times after waiting 1, 2, 4, 8, 16 s, then synced state and gave up
    assert sleep.waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    reconnecting = [u for u in updates if isinstance(u, Reconnecting)]
    assert [(u.attempt, u.attempts, u.wait) for u in reconnecting] == [
        (1, 5, 1.0),
        (2, 5, 2.0),
        (3, 5, 4.0),
        (4, 5, 8.0),
        (5, 5, 16.0),
    ]
    assert len(server.connections) == 6
    final = updates[-1]
    assert isinstance(final, GaveUp)
    assert "reconnect attempts used up" in final.reason
    assert (final.view.seq, final.view.counters.processed) == (4, 3)


def test_reconnect_policy_is_configurable_and_capped(server: FakeTether) -> None:
    server.scripts = [503]
    server.state = job_state(seq=0, processed=0)
    sleep = RecordingSleep()
    policy = WatchPolicy(reconnect=Backoff(initial=2.0, multiplier=3.0, cap=10.0, attempts=4))

    updates = watch(server, sleep=sleep, policy=policy)

    assert sleep.waits == [2.0, 6.0, 10.0, 10.0]
    assert isinstance(updates[-1], GaveUp)
    assert len(server.connections) == 5


def test_cancel_reconnection_stops_it(server: FakeTether) -> None:
    # Given a server that refuses every connection, and a cancel during the second wait
    server.scripts = [503]
    server.state = job_state(seq=0, processed=0)
    clients: list[TetherClient] = []
    sleep = RecordingSleep(on_call={2: lambda: clients[0].cancel_reconnection()})

    # When the client watches
    updates = watch(server, sleep=sleep, client_hook=clients.append)

    # Then no third try is made and the watch says why it stopped
    assert sleep.waits == [1.0, 2.0]
    assert len(server.connections) == 2
    final = updates[-1]
    assert isinstance(final, GaveUp)
    assert final.reason == "reconnection cancelled"


def test_a_job_that_ended_while_disconnected_ends_the_watch_as_finished(
    server: FakeTether,
) -> None:
    server.scripts = [503, 503]
    server.state = job_state(seq=9, processed=10, value=COMPLETED)
    policy = WatchPolicy(reconnect=Backoff(attempts=1))

    updates = watch(server, policy=policy)

    final = updates[-1]
    assert isinstance(final, Finished)
    assert (final.view.status, final.view.counters.processed) == (COMPLETED, 10)


def test_resync_syncs_state_over_http_retrying_5xx(server: FakeTether) -> None:
    # Given a subscribe the log cannot serve: recovered false, then a resync frame
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=10, replayed=0, recovered=False), resync(None))
        await asyncio.sleep(0.05)
        await socket.send(progress(10, 7), progress(11, 8), status(12, COMPLETED))
        await socket.until_closed()

    server.scripts = [script]
    # And a state sync that fails twice with 5xx, then answers
    server.state_replies = [
        problem_reply(503, "contention", "try again"),
        problem_reply(502, "bad_gateway", "upstream"),
        (200, job_state(seq=10, processed=7).model_dump(mode="json")),
    ]
    sleep = RecordingSleep()

    updates = watch(server, sleep=sleep)

    # Then the client waited 0.5 s and 1 s between three tries, took seq 10 from the state,
    # dropped the live 10 as already seen, and showed 11 and 12
    assert sleep.waits == [0.5, 1.0]
    assert [r["path"] for r in server.requests] == [f"/jobs/{JOB}"] * 3
    assert server.requests[0]["headers"]["Authorization"] == "Bearer user-token"
    resynced = [u for u in updates if isinstance(u, Resynced)]
    assert [(u.view.seq, u.view.counters.processed) for u in resynced] == [(10, 7)]
    assert shown_seqs(updates) == [11, 12]
    assert isinstance(updates[-1], Finished)


def test_resync_with_a_4xx_stops_at_once_and_uses_the_frames_snapshot(
    server: FakeTether,
) -> None:
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        snapshot = job_state(seq=5, processed=5)
        await socket.send(subscribed(head=5, replayed=0, recovered=False), resync(snapshot))
        await socket.send(status(6, COMPLETED))
        await socket.until_closed()

    server.scripts = [script]
    server.state_replies = [problem_reply(403, "forbidden", "missing scope")]
    sleep = RecordingSleep()

    updates = watch(server, sleep=sleep)

    assert sleep.waits == []
    assert len(server.requests) == 1
    assert [u.view.seq for u in updates if isinstance(u, Resynced)] == [5]
    assert shown_seqs(updates) == [6]


def test_resync_without_state_anywhere_gives_up(server: FakeTether) -> None:
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=5, replayed=0, recovered=False), resync(None))
        await socket.until_closed()

    server.scripts = [script]
    server.state_replies = [problem_reply(401, "unauthenticated", "token expired")]

    updates = watch(server)

    final = updates[-1]
    assert isinstance(final, GaveUp)
    assert "token expired" in final.reason


def test_a_refused_subscribe_for_a_missing_job_ends_as_job_gone(server: FakeTether) -> None:
    # Given a subscribe answered with an error, and a state sync answering 404
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(error("job_not_found", "job not found"))
        await socket.until_closed()

    server.scripts = [script]
    sleep = RecordingSleep()

    updates = watch(server, sleep=sleep)

    # Then the client asked once (404 is not retried) and says the job is gone
    assert [type(u) for u in updates] == [ServerError, JobGone]
    assert sleep.waits == []
    assert len(server.requests) == 1


def test_a_refused_subscribe_syncs_state_then_subscribes_from_it(server: FakeTether) -> None:
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(error("seq_ahead", "seq 0 is ahead"))
        again = await socket.expect("subscribe")
        assert (again["since"], again["epoch"]) == (3, "e1")
        await socket.send(subscribed(head=3, replayed=0), status(4, COMPLETED))
        await socket.until_closed()

    server.scripts = [script]
    server.state = job_state(seq=3, processed=5)

    updates = watch(server)

    assert [type(u) for u in updates] == [
        ServerError,
        Resynced,
        Subscribed,
        StatusChanged,
        Finished,
    ]


def test_a_handshake_refused_with_401_is_not_retried(server: FakeTether) -> None:
    server.scripts = [401]
    sleep = RecordingSleep()

    updates = watch(server, sleep=sleep)

    assert sleep.waits == []
    assert len(server.connections) == 1
    final = updates[-1]
    assert isinstance(final, GaveUp)
    assert "401" in final.reason


def test_acks_are_coalesced_and_the_last_one_is_always_sent(server: FakeTether) -> None:
    # Given 60 replayed messages in one frame, 4 live ones, then the terminal status
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        replay = [progress(seq, seq, total=100) for seq in range(1, 61)]
        await socket.send(subscribed(head=60, replayed=60), batch(*replay))
        await socket.send(*(progress(seq, seq, total=100) for seq in range(61, 65)))
        await socket.send(status(65, COMPLETED))
        await socket.until_closed()

    server.scripts = [script]

    updates = watch(server, policy=WatchPolicy(ack_every=25, ack_interval=60.0))

    # Then one ack covered the replay, the next the end: not one per message
    assert shown_seqs(updates) == list(range(1, 66))
    assert server.acks() == [60, 65]


def test_pings_and_a_proactive_reconnect_before_the_connection_limit(server: FakeTether) -> None:
    # Given a connection that answers pings and outlives the (shortened) age limit
    async def long_lived(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=2, replayed=2), batch(status(1, RUNNING), progress(2, 5)))
        await socket.expect("ping")
        await socket.send(pong())
        await socket.until_closed()

    async def fresh(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=2, replayed=0), status(3, COMPLETED))
        await socket.until_closed()

    server.scripts = [long_lived, fresh]
    sleep = RecordingSleep()
    policy = WatchPolicy(ping_interval=0.05, max_connection_age=0.4, idle_sync_interval=60.0)

    updates = watch(server, sleep=sleep, policy=policy)

    # Then it pinged, reconnected on its own with no backoff, and resumed from seq 2
    assert any(a["action"] == "ping" for i, a in server.actions if i == 0)
    assert sleep.waits == []
    assert not any(isinstance(u, Reconnecting) for u in updates)
    assert [(i, a["since"]) for i, a in server.subscribes()] == [(0, 0), (1, 2)]
    assert shown_seqs(updates) == [1, 2, 3]


def test_a_missing_pong_counts_as_a_dropped_connection(server: FakeTether) -> None:
    async def silent(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, RUNNING)))
        await socket.until_closed()

    async def back(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=0), status(2, COMPLETED))
        await socket.until_closed()

    server.scripts = [silent, back]
    policy = WatchPolicy(ping_interval=0.05, pong_timeout=0.1, idle_sync_interval=60.0)

    updates = watch(server, policy=policy)

    reconnecting = [u for u in updates if isinstance(u, Reconnecting)]
    assert [u.reason for u in reconnecting] == ["no pong within 0.1 s"]
    assert shown_seqs(updates) == [1, 2]


def test_a_quiet_socket_asks_http_whether_the_log_moved(server: FakeTether) -> None:
    # Given the terminal message (3) was missed live and nothing else will come
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(
            subscribed(head=2, replayed=2), batch(status(1, RUNNING), progress(2, 10))
        )
        again = await socket.expect("subscribe")
        assert again["since"] == 2
        await socket.send(subscribed(head=3, replayed=1), batch(status(3, COMPLETED)))
        await socket.until_closed()

    server.scripts = [script]
    server.state = job_state(seq=3, processed=10, value=COMPLETED)

    updates = watch(server, policy=WatchPolicy(idle_sync_interval=0.1))

    # Then a state sync showed seq 3 and the client resubscribed to get it from the log
    assert shown_seqs(updates) == [1, 2, 3]
    assert isinstance(updates[-1], Finished)


def test_create_job_keeps_the_resume_token(server: FakeTether, tmp_path: Any) -> None:
    from infra.client.tokens import FileTokenStore
    from shared.domain.models import JobRequest

    tokens = FileTokenStore(tmp_path)

    async def run() -> str:
        async with TetherClient(
            http_url=server.http_url, ws_url=server.ws_url, token="user-token", tokens=tokens
        ) as client:
            created = await client.create_job(JobRequest(type="demo", params={"items": 3}))
            return created.job.job_id

    job_id = asyncio.run(run())

    assert tokens.get(job_id) == "resume-token-1"
    assert server.requests[0]["body"]["params"] == {"items": 3}


def test_drop_connection_cuts_the_socket_and_the_watch_resumes(server: FakeTether) -> None:
    # Given a connection that would stay open after seq 2
    async def stays(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=2, replayed=2), batch(status(1, RUNNING), progress(2, 5)))
        await socket.until_closed()

    async def resumes(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=2, replayed=0), status(3, COMPLETED))
        await socket.until_closed()

    server.scripts = [stays, resumes]
    sleep = RecordingSleep()

    async def run() -> tuple[list[WatchUpdate], bool]:
        updates: list[WatchUpdate] = []
        cut = False
        async with TetherClient(
            http_url=server.http_url, ws_url=server.ws_url, token="t", sleep=sleep
        ) as client:
            async for update in client.watch(JOB):
                updates.append(update)
                if isinstance(update, Progress) and update.seq == 2:
                    cut = client.drop_connection()
        return updates, cut

    # When the client cuts its own socket after seq 2
    updates, cut = asyncio.run(asyncio.wait_for(run(), timeout=20))
    server.settle()

    # Then it reconnects after 1 s and resumes from 2
    assert cut
    assert sleep.waits == [1.0]
    assert [(i, a["since"]) for i, a in server.subscribes()] == [(0, 0), (1, 2)]
    assert shown_seqs(updates) == [1, 2, 3]


def test_a_refused_resume_token_falls_back_to_the_clients_own(
    server: FakeTether, tmp_path: Any
) -> None:
    from infra.client.tokens import FileTokenStore

    # Given a stored resume token the server refuses (expired), then a working connection
    async def finished_job(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, COMPLETED)))
        await socket.until_closed()

    server.scripts = [401, finished_job]
    tokens = FileTokenStore(tmp_path)
    tokens.put(JOB, "expired-resume-token")
    sleep = RecordingSleep()

    async def run() -> list[WatchUpdate]:
        async with TetherClient(
            http_url=server.http_url,
            ws_url=server.ws_url,
            token="user-token",
            tokens=tokens,
            sleep=sleep,
        ) as client:
            return [update async for update in client.watch(JOB)]

    updates = asyncio.run(asyncio.wait_for(run(), timeout=20))
    server.settle()

    # Then the second try used the client's own token, at once, and the watch completed
    assert [c["protocols"] for c in server.connections] == [
        "tether.v2,bearer.expired-resume-token",
        "tether.v2,bearer.user-token",
    ]
    assert sleep.waits == []
    assert isinstance(updates[-1], Finished)


def test_timers_fire_even_when_their_deadline_has_already_passed(server: FakeTether) -> None:
    # Given a clock that jumps 50 s at every reading, so each deadline is past when computed
    # (a receive timeout of 0 would mean "wait forever" to aiohttp), and a silent server
    async def silent(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, RUNNING)))
        await socket.until_closed()

    async def back(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=0), status(2, COMPLETED))
        await socket.until_closed()

    server.scripts = [silent, back]
    server.state = job_state(seq=1, processed=0)
    readings = itertools.count(step=50.0)

    async def run() -> list[WatchUpdate]:
        async with TetherClient(
            http_url=server.http_url,
            ws_url=server.ws_url,
            token="t",
            sleep=RecordingSleep(),
            monotonic=lambda: next(readings),
        ) as client:
            return [update async for update in client.watch(JOB)]

    # When the client watches
    updates = asyncio.run(asyncio.wait_for(run(), timeout=20))
    server.settle()

    # Then its timers ran (a missing pong or the age limit replaced the connection)
    assert len(server.connections) == 2
    # And it ends completed, each seq shown at most once. On a busy machine the first reply can
    # arrive after its (already past) subscribe deadline: the client then takes seq 1 from the
    # HTTP state sync instead of the frame, so message 1 may not be shown on its own.
    assert shown_seqs(updates) in ([1, 2], [2])
    final = updates[-1]
    assert isinstance(final, Finished)
    assert final.view.status is COMPLETED
