"""The Python client (DESIGN §11): create jobs, and watch one over the WebSocket until it ends.

`TetherClient.watch(job_id)` is an async iterator of typed updates (`infra.client.updates`).
Underneath it keeps the contract of §4: subscribe with `since`/`epoch`, drop seqs already seen,
hold early ones until the replay fills the hole (or resubscribe when it will not), ack what the
caller processed (coalesced), resync over HTTP when told to or when the subscribe is refused,
`ping` inside API Gateway's idle limit, reconnect before its 2-hour limit, and after a drop
reconnect with exponential backoff (1, 2, 4, 8, 16 s by default) until it works, the attempts
run out, or `cancel_reconnection()` is called. Time is injected (`sleep`, `monotonic`) so the
tests never wait for a backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Final, Self

import aiohttp
from pydantic import ValidationError
from yarl import URL

from infra.client.api import ApiProblem, JobGoneError, TetherApi
from infra.client.policy import WatchPolicy
from infra.client.tokens import TokenStore
from infra.client.tracker import AckWindow, JobTracker
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
from shared.api.schemas import JobCreated
from shared.domain.actions import Ping
from shared.domain.envelope import Envelope, ErrorData, MessageType, SubscribedData
from shared.domain.models import JobRequest, JobState, TetherModel
from shared.services.auth import WS_BEARER_PREFIX, WS_SUBPROTOCOL

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]

# Errors on a subscribe that a state sync can settle; anything else is retried as is.
JOB_NOT_FOUND: Final = "job_not_found"
NOT_CONNECTED: Final = "not_connected"


class ConnectionLost(Exception):
    """The socket closed or stopped answering; the watch reconnects."""


class ConnectRefused(Exception):
    """The server refused the WebSocket upgrade for good (401/403/4xx): no point retrying."""


class TetherClient:
    """An HTTP + WebSocket client for one Tether deployment (`async with` it)."""

    def __init__(
        self,
        *,
        http_url: str,
        ws_url: str,
        token: str | None = None,
        tokens: TokenStore | None = None,
        policy: WatchPolicy | None = None,
        token_in_query: bool = False,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.http_url = http_url
        self.ws_url = ws_url
        self.token = token
        self.tokens = tokens
        self.policy = policy or WatchPolicy()
        self.token_in_query = token_in_query
        self._sleep = sleep
        self._monotonic = monotonic
        self._cancelled = False
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._api: TetherApi | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(total=30, connect=10)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._api = TetherApi(
            self._session,
            self.http_url,
            self.token,
            sleep=self._sleep,
            state_sync=self.policy.state_sync,
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._api = None

    @property
    def api(self) -> TetherApi:
        if self._api is None:
            raise RuntimeError("use the client inside `async with TetherClient(...)`")
        return self._api

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client inside `async with TetherClient(...)`")
        return self._session

    async def create_job(
        self, request: JobRequest, *, idempotency_key: str | None = None
    ) -> JobCreated:
        """POST /jobs, and keep the job's resume token for later watches."""
        created = await self.api.create_job(request, idempotency_key=idempotency_key)
        if self.tokens is not None:
            self.tokens.put(created.job.job_id, created.resume_token)
        return created

    def cancel_reconnection(self) -> None:
        """Stop reconnecting: a pending backoff ends now and the watch gives up."""
        self._cancelled = True
        self._wake.set()

    async def drop_connection(self) -> None:
        """Close the current socket as a network drop would (tests and demos)."""
        if self._socket is not None:
            await self._socket.close()

    # -- watching ---------------------------------------------------------------------------

    async def watch(
        self, job_id: str, *, since: int = 0, epoch: str | None = None
    ) -> AsyncIterator[WatchUpdate]:
        """Updates about one job until it ends (`Finished`), is gone, or the watch gives up."""
        token = self._token_for(job_id)
        tracker = JobTracker(job_id, since=since, epoch=epoch)
        acks = AckWindow(self.policy.ack_every, self.policy.ack_interval)
        self._cancelled = False
        self._wake.clear()
        failures = 0
        while True:
            watch = _SocketWatch(self, tracker, acks, token)
            try:
                async with self._open(token) as socket:
                    async for update in watch.run(socket):
                        if isinstance(update, Subscribed):
                            failures = 0
                        yield update
                        if update.final:
                            return
            except ConnectRefused as refused:
                yield GaveUp(tracker.view(), reason=str(refused))
                return
            except (ConnectionLost, aiohttp.ClientError, OSError, TimeoutError) as lost:
                watch.reason = _describe(lost)
            if watch.proactive:
                continue
            failures += 1
            reconnect = self.policy.reconnect
            if self._cancelled or failures > reconnect.attempts:
                why = "reconnection cancelled" if self._cancelled else "reconnect attempts used up"
                yield await self._last_word(tracker, token, f"{why}; last: {watch.reason}")
                return
            wait = reconnect.delay(failures)
            yield Reconnecting(
                tracker.view(),
                attempt=failures,
                attempts=reconnect.attempts,
                wait=wait,
                reason=watch.reason,
            )
            if not await self._pause(wait):
                yield await self._last_word(tracker, token, "reconnection cancelled")
                return

    def _token_for(self, job_id: str) -> str:
        stored = self.tokens.get(job_id) if self.tokens is not None else None
        token = stored or self.token
        if not token:
            raise ValueError(f"no token for job {job_id}: none stored and none given")
        return token

    @asynccontextmanager
    async def _open(self, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        url = URL(self.ws_url)
        protocols: tuple[str, ...] = (WS_SUBPROTOCOL, f"{WS_BEARER_PREFIX}{token}")
        if self.token_in_query:
            url, protocols = url.update_query(token=token), (WS_SUBPROTOCOL,)
        try:
            socket = await self.session.ws_connect(url, protocols=protocols, autoping=True)
        except aiohttp.WSServerHandshakeError as refused:
            if 400 <= refused.status < 500 and refused.status != 429:
                raise ConnectRefused(
                    f"WebSocket refused: {refused.status} {refused.message}"
                ) from refused
            raise
        self._socket = socket
        try:
            yield socket
        finally:
            self._socket = None
            await socket.close()

    async def _pause(self, wait: float) -> bool:
        """Sleep `wait` s unless reconnection is cancelled first; False when it was."""
        if self._cancelled:
            return False
        sleeper = asyncio.ensure_future(self._sleep(wait))
        waker = asyncio.ensure_future(self._wake.wait())
        _, pending = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return not self._cancelled

    async def _last_word(self, tracker: JobTracker, token: str, reason: str) -> WatchUpdate:
        """Without a socket: one state sync over HTTP says how the job stands, if it can."""
        try:
            state = await self.api.sync_state(tracker.job_id, token=token)
        except JobGoneError:
            return JobGone(tracker.view())
        except ApiProblem as problem:
            return GaveUp(tracker.view(), reason=f"{reason}; state sync failed: {problem}")
        tracker.adopt(state)
        if tracker.finished:
            return Finished(tracker.view())
        return GaveUp(tracker.view(), reason=reason)

    async def send(self, socket: aiohttp.ClientWebSocketResponse, action: TetherModel) -> None:
        await socket.send_str(action.model_dump_json(exclude_none=True))


class _SocketWatch:
    """One connection's worth of a watch: subscribe, then frames and timers until it ends."""

    def __init__(
        self, client: TetherClient, tracker: JobTracker, acks: AckWindow, token: str
    ) -> None:
        self.client = client
        self.tracker = tracker
        self.acks = acks
        self.token = token
        self.policy = client.policy
        self.now = client._monotonic
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
                message = await socket.receive(timeout=max(0.0, deadline - self.now()))
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

    async def _announce(self, message: Envelope) -> AsyncIterator[WatchUpdate]:
        """Yield one in-order message; once the caller took it, it counts as processed."""
        seq = message.seq or 0
        view = self.tracker.view()
        if message.type is MessageType.PROGRESS:
            yield Progress(view, seq=seq)
        elif view.status is not None:
            yield StatusChanged(view, seq=seq, status=view.status)
        self.acks.processed_up_to(seq, self.now())
        if self.tracker.finished and seq == self.tracker.last_seq:
            await self._flush_acks(force=True)
            yield Finished(self.tracker.view())

    async def _resync(self, snapshot: JobState | None) -> AsyncIterator[WatchUpdate]:
        """State sync over HTTP (3 tries); the resync frame's own snapshot if HTTP fails."""
        try:
            state = await self.client.api.sync_state(self.tracker.job_id, token=self.token)
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
        for message in ready:
            async for update in self._announce(message):
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
        """Quiet for a while: if the log moved past us, resubscribe (resync on a new epoch)."""
        if self.tracker.awaiting_reply:
            return
        try:
            state = await self.client.api.sync_state(self.tracker.job_id, token=self.token)
        except JobGoneError:
            yield JobGone(self.tracker.view())
            return
        except ApiProblem:
            return  # the socket is the main path; try again after the next quiet spell
        if state.epoch != self.tracker.epoch:
            async for update in self._resync(state):
                yield update
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
            await self.client.send(self.socket, action)
        except (aiohttp.ClientError, ConnectionError) as lost:
            raise ConnectionLost(f"send failed: {lost}") from lost


_CLOSED: Final = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def _snapshot(frame: Envelope) -> JobState | None:
    try:
        return JobState.model_validate(frame.data)
    except ValidationError:
        return None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
