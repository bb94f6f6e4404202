"""One WebSocket connection of a watch: the frames of docs/protocol.md and the client's timers.

`TetherClient.watch` opens a socket and hands it to a `SocketWatch`, which subscribes from the
tracker's position and then turns frames into updates: replays and live messages in seq order
(through `JobTracker`), resyncs over HTTP, refused subscribes, pongs. Between frames it keeps
the timers: `ping`, the pong deadline, coalesced acks, the quiet-socket check, and the age limit
after which the watch reconnects on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Final

import aiohttp
from pydantic import ValidationError

from infra.client.api import ApiProblem, JobGoneError, TetherApi
from infra.client.policy import WatchPolicy
from infra.client.tracker import AckWindow, Delivered, JobTracker
from infra.client.updates import (
    Finished,
    GaveUp,
    JobGone,
    Progress,
    Resynced,
    ServerError,
    StatusChanged,
    Subscribed,
    WatchUpdate,
)
from shared.domain.actions import Ping
from shared.domain.envelope import Envelope, ErrorData, MessageType, SubscribedData
from shared.domain.models import JobState, TetherModel

MIN_WAIT: Final = 0.001

# An error on a subscribe that means the server no longer knows this socket: reconnect.
NOT_CONNECTED: Final = "not_connected"


class ConnectionLost(Exception):
    """The socket closed or stopped answering; the watch reconnects."""


class SocketWatch:
    """One connection's worth of a watch: subscribe, then frames and timers until it ends.

    `run` yields updates; it raises `ConnectionLost` when the socket goes, and returns with
    `proactive` set when the connection reached its age limit and should be replaced.
    """

    def __init__(
        self,
        api: TetherApi,
        policy: WatchPolicy,
        tracker: JobTracker,
        acks: AckWindow,
        token: str,
        *,
        monotonic: Callable[[], float],
    ) -> None:
        self.api = api
        self.tracker = tracker
        self.acks = acks
        self.token = token
        self.policy = policy
        self.now = monotonic
        self.reason = "connection closed"
        self.proactive = False
        self.subscribe_failures = 0
        started = self.now()
        self.connected_at = started
        self.heard_at = started
        self.next_ping = started + self.policy.ping_interval
        self.pong_due: float | None = None
        self.socket: aiohttp.ClientWebSocketResponse | None = None

    async def run(self, socket: aiohttp.ClientWebSocketResponse) -> AsyncIterator[WatchUpdate]:
        self.socket = socket
        await self._send(self.tracker.subscribe())
        while True:
            deadline = self._next_deadline()
            try:
                # Never 0: aiohttp reads a timeout of 0 as "no timeout" and would block.
                message = await socket.receive(timeout=max(MIN_WAIT, deadline - self.now()))
            except TimeoutError:
                async for update in self._on_timers():
                    yield update
                    if update.final:
                        return
                if self.proactive:
                    return
                continue
            if message.type is aiohttp.WSMsgType.TEXT:
                self.heard_at = self.now()
                async for update in self._on_frame(message.data):
                    yield update
                    if update.final:
                        return
                await self._after_frame()
            elif message.type is aiohttp.WSMsgType.ERROR:
                raise ConnectionLost(f"socket error: {socket.exception()}")
            elif message.type in _CLOSED:
                raise ConnectionLost(f"closed by the server (code {socket.close_code})")

    # -- frames -----------------------------------------------------------------------------

    async def _on_frame(self, text: str) -> AsyncIterator[WatchUpdate]:
        try:
            frame = Envelope.model_validate_json(text)
        except ValidationError as invalid:
            yield ServerError(self.tracker.view(), code="bad_frame", message=str(invalid)[:200])
            return
        match frame.type:
            case MessageType.SUBSCRIBED:
                reply = SubscribedData.model_validate(frame.data)
                self.tracker.subscribed(reply)
                self.subscribe_failures = 0
                yield Subscribed(
                    self.tracker.view(),
                    recovered=reply.recovered,
                    replayed=reply.replayed,
                    head=reply.seq,
                )
            case MessageType.BATCH:
                for item in frame.data.get("messages", []):
                    async for update in self._deliver(Envelope.model_validate(item)):
                        yield update
            case MessageType.STATUS | MessageType.PROGRESS:
                async for update in self._deliver(frame):
                    yield update
            case MessageType.RESYNC:
                async for update in self._resync(_snapshot(frame)):
                    yield update
            case MessageType.ERROR:
                async for update in self._on_error(ErrorData.model_validate(frame.data)):
                    yield update
            case MessageType.PONG:
                self.pong_due = None

    async def _deliver(self, message: Envelope) -> AsyncIterator[WatchUpdate]:
        for ready in self.tracker.accept(message):
            async for update in self._announce(ready):
                yield update

    async def _announce(self, ready: Delivered) -> AsyncIterator[WatchUpdate]:
        """Yield one in-order message; once the caller took it, it counts as processed."""
        view = ready.view
        if ready.message.type is MessageType.PROGRESS:
            yield Progress(view, seq=ready.seq)
        elif view.status is not None:
            yield StatusChanged(view, seq=ready.seq, status=view.status)
        self.acks.processed_up_to(ready.seq, self.now())
        if view.status is not None and view.status.is_terminal:
            await self._flush_acks(force=True)
            yield Finished(view)

    async def _resync(self, snapshot: JobState | None) -> AsyncIterator[WatchUpdate]:
        """State sync over HTTP (3 tries); the resync frame's own snapshot if HTTP fails."""
        try:
            state = await self.api.sync_state(self.tracker.job_id, token=self.token)
        except JobGoneError:
            yield JobGone(self.tracker.view())
            return
        except ApiProblem as problem:
            if snapshot is None:
                yield GaveUp(self.tracker.view(), reason=f"state sync failed: {problem}")
                return
            state = snapshot
        ready = self.tracker.adopt(state)
        yield Resynced(self.tracker.view(), state=state)
        self.acks.processed_up_to(self.tracker.last_seq, self.now())
        if self.tracker.finished and not ready:
            yield Finished(self.tracker.view())
            return
        for delivered in ready:
            async for update in self._announce(delivered):
                yield update

    async def _on_error(self, error: ErrorData) -> AsyncIterator[WatchUpdate]:
        if error.code == NOT_CONNECTED:
            raise ConnectionLost(f"the server forgot this connection: {error.message}")
        if not self.tracker.awaiting_reply:
            yield ServerError(self.tracker.view(), code=error.code, message=error.message)
            return
        # The subscribe was refused: learn the state over HTTP, then try again from there.
        self.tracker.refused()
        self.subscribe_failures += 1
        yield ServerError(self.tracker.view(), code=error.code, message=error.message)
        if self.subscribe_failures > self.policy.max_subscribe_failures:
            yield GaveUp(self.tracker.view(), reason=f"subscribe refused: {error.message}")
            return
        async for update in self._resync(None):
            yield update
            if update.final:
                return
        await self._send(self.tracker.subscribe())

    async def _after_frame(self) -> None:
        if self.tracker.needs_resubscribe:
            await self._send(self.tracker.subscribe())
        await self._flush_acks()

    # -- timers -----------------------------------------------------------------------------

    def _next_deadline(self) -> float:
        deadlines = [self.next_ping, self.connected_at + self.policy.max_connection_age]
        if self.pong_due is not None:
            deadlines.append(self.pong_due)
        ack_due = self.acks.due_at()
        if ack_due is not None:
            deadlines.append(ack_due)
        if not self.tracker.finished:
            deadlines.append(self.heard_at + self.policy.idle_sync_interval)
        return min(deadlines)

    async def _on_timers(self) -> AsyncIterator[WatchUpdate]:
        now = self.now()
        if self.pong_due is not None and now >= self.pong_due:
            raise ConnectionLost(f"no pong within {self.policy.pong_timeout:g} s")
        if now >= self.connected_at + self.policy.max_connection_age:
            await self._flush_acks(force=True)
            self.proactive = True
            self.reason = "connection age limit: reconnecting ahead of API Gateway"
            return
        if now >= self.next_ping:
            await self._send(Ping(action="ping"))
            self.next_ping = now + self.policy.ping_interval
            if self.pong_due is None:  # the oldest unanswered ping sets the deadline
                self.pong_due = now + self.policy.pong_timeout
        await self._flush_acks()
        if now >= self.heard_at + self.policy.idle_sync_interval and not self.tracker.finished:
            self.heard_at = now
            async for update in self._check_for_missed():
                yield update

    async def _check_for_missed(self) -> AsyncIterator[WatchUpdate]:
        """Quiet for a while: if the log moved past us, resubscribe (resync on a new epoch).

        A subscribe unanswered for that long is settled the same way: state, then again.
        """
        unanswered = self.tracker.awaiting_reply
        try:
            state = await self.api.sync_state(self.tracker.job_id, token=self.token)
        except JobGoneError:
            yield JobGone(self.tracker.view())
            return
        except ApiProblem:
            return  # the socket is the main path; try again after the next quiet spell
        if unanswered or state.epoch != self.tracker.epoch:
            async for update in self._resync(state):
                yield update
                if update.final:
                    return
            await self._send(self.tracker.subscribe())
        elif state.seq > self.tracker.last_seq:
            await self._send(self.tracker.subscribe())

    async def _flush_acks(self, *, force: bool = False) -> None:
        if self.tracker.awaiting_reply:
            return  # an error now must mean "subscribe refused", never "ack refused"
        seq = self.acks.take(self.now(), force=force)
        if seq is not None:
            await self._send(self.acks.action(self.tracker.job_id, seq))

    async def _send(self, action: TetherModel) -> None:
        if self.socket is None or self.socket.closed:
            raise ConnectionLost("socket closed")
        try:
            await self.socket.send_str(action.model_dump_json(exclude_none=True))
        except (aiohttp.ClientError, ConnectionError) as lost:
            raise ConnectionLost(f"send failed: {lost}") from lost


_CLOSED: Final = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def _snapshot(frame: Envelope) -> JobState | None:
    try:
        return JobState.model_validate(frame.data)
    except ValidationError:
        return None
