"""The Python client: create jobs, and watch one over the WebSocket until it ends.

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
import socket as socket_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import aiohttp

from infra.client.api import ApiProblem, JobGoneError, TetherApi
from infra.client.connection import ConnectionLost, SocketWatch
from infra.client.policy import WatchPolicy
from infra.client.tokens import TokenStore
from infra.client.tracker import AckWindow, JobTracker
from infra.client.updates import (
    Finished,
    GaveUp,
    JobGone,
    Reconnecting,
    Subscribed,
    WatchUpdate,
)
from shared.api.schemas import JobCreated
from shared.domain.models import JobRequest
from shared.services.auth import WS_BEARER_PREFIX, WS_SUBPROTOCOL

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]


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

    def drop_connection(self) -> bool:
        """Cut the current socket as a lost network does (no close frame); False if none.

        For demos and tests of recovery: the watch notices, reconnects and resumes with since.
        """
        raw = self._socket.get_extra_info("socket") if self._socket is not None else None
        if raw is None:
            return False
        raw.shutdown(socket_module.SHUT_RDWR)
        return True

    # -- watching ---------------------------------------------------------------------------

    async def watch(
        self, job_id: str, *, since: int = 0, epoch: str | None = None
    ) -> AsyncIterator[WatchUpdate]:
        """Updates about one job until it ends (`Finished`), is gone, or the watch gives up."""
        tokens = self._tokens_for(job_id)
        token = tokens.pop(0)
        tracker = JobTracker(job_id, since=since, epoch=epoch)
        acks = AckWindow(self.policy.ack_every, self.policy.ack_interval)
        self._cancelled = False
        self._wake.clear()
        failures = 0
        while True:
            watch = SocketWatch(
                self.api, self.policy, tracker, acks, token, monotonic=self._monotonic
            )
            try:
                async with self._open(token) as socket:
                    async for update in watch.run(socket):
                        if isinstance(update, Subscribed):
                            failures = 0
                        yield update
                        if update.final:
                            return
            except ConnectRefused as refused:
                if tokens:  # e.g. the job's resume token expired: the caller's own may do
                    token = tokens.pop(0)
                    continue
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

    def _tokens_for(self, job_id: str) -> list[str]:
        """The job's stored resume token first, then the client's own token."""
        stored = self.tokens.get(job_id) if self.tokens is not None else None
        found = [token for token in (stored, self.token) if token]
        if not found:
            raise ValueError(f"no token for job {job_id}: none stored and none given")
        return list(dict.fromkeys(found))

    @asynccontextmanager
    async def _open(self, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        protocols: tuple[str, ...] = (WS_SUBPROTOCOL, f"{WS_BEARER_PREFIX}{token}")
        query: dict[str, str] = {}
        if self.token_in_query:
            protocols, query = (WS_SUBPROTOCOL,), {"token": token}
        try:
            socket = await self.session.ws_connect(
                self.ws_url, protocols=protocols, params=query, autoping=True
            )
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


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
