"""A scripted Tether server for the client and CLI tests: real HTTP and WebSocket, port 0.

Each WebSocket connection runs the next script of `FakeTether.scripts` (a coroutine given a
`FakeSocket`), or is refused with the status given instead of a script; when the scripts run
out, connections are refused with 503. `GET /jobs/{id}` answers from `state_replies` first,
then with `state`. Everything the client sent is recorded. The server runs in its own thread
and event loop, so a test can drive it from `asyncio.run` or from the synchronous CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import WSMsgType, web

from shared.api.problems import PROBLEM_CONTENT_TYPE, problem
from shared.api.schemas import JobCreated, JobList
from shared.domain.envelope import Envelope, MessageType, ProgressData, SubscribedData
from shared.domain.models import Counters, JobRequest, JobState, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB = "j_000000000001"
EPOCH = "e1"


# -- frames ---------------------------------------------------------------------------------


def progress(seq: int, processed: int, total: int = 10, *, failed: int = 0) -> Envelope:
    counters = Counters(
        total=total, processed=processed, succeeded=processed - failed, failed=failed
    )
    data = ProgressData.of(counters).model_dump(mode="json")
    return Envelope(type=MessageType.PROGRESS, job_id=JOB, seq=seq, epoch=EPOCH, ts=T0, data=data)


def status(seq: int, value: JobStatus, **extra: Any) -> Envelope:
    data = {"status": value.value, **extra}
    return Envelope(type=MessageType.STATUS, job_id=JOB, seq=seq, epoch=EPOCH, ts=T0, data=data)


def subscribed(head: int, replayed: int, *, recovered: bool = True) -> Envelope:
    reply = SubscribedData(
        job_id=JOB, seq=head, epoch=EPOCH, recovered=recovered, replayed=replayed
    )
    return Envelope(
        type=MessageType.SUBSCRIBED, job_id=JOB, ts=T0, data=reply.model_dump(mode="json")
    )


def batch(*messages: Envelope) -> Envelope:
    data = {"messages": [message.model_dump(mode="json") for message in messages]}
    return Envelope(type=MessageType.BATCH, job_id=JOB, ts=T0, data=data)


def resync(state: JobState | None) -> Envelope:
    data = state.model_dump(mode="json") if state is not None else {}
    return Envelope(type=MessageType.RESYNC, job_id=JOB, ts=T0, data=data)


def error(code: str, message: str) -> Envelope:
    data = {"code": code, "message": message}
    return Envelope(type=MessageType.ERROR, job_id=JOB, ts=T0, data=data)


def pong() -> Envelope:
    return Envelope(type=MessageType.PONG, ts=T0)


def job_state(
    seq: int,
    processed: int,
    *,
    total: int = 10,
    value: JobStatus = JobStatus.RUNNING,
    job_id: str = JOB,
) -> JobState:
    return JobState(
        job_id=job_id,
        tenant_id="local",
        owner_id="dev",
        type="demo",
        params={"items": total},
        status=value,
        counters=Counters(total=total, processed=processed, succeeded=processed),
        seq=seq,
        epoch=EPOCH,
        created_at=T0,
        updated_at=T0,
    )


def problem_reply(status_code: int, code: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status_code, problem(HTTPStatus(status_code), code, detail).body()


# -- the server -----------------------------------------------------------------------------


class FakeSocket:
    """One accepted WebSocket, as a script sees it."""

    def __init__(self, server: FakeTether, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server = server
        self.ws = ws
        self.request = request
        self.index = len(server.sockets)

    async def action(self) -> dict[str, Any]:
        """The next client action (acks and pings included), recorded."""
        while True:
            message = await self.ws.receive()
            if message.type is not WSMsgType.TEXT:
                raise ConnectionError(f"client went away ({message.type})")
            action: dict[str, Any] = json.loads(message.data)
            self.server.actions.append((self.index, action))
            return action

    async def expect(self, name: str) -> dict[str, Any]:
        """Skip (but record) other actions until one named `name` comes."""
        while True:
            action = await self.action()
            if action["action"] == name:
                return action

    async def send(self, *frames: Envelope) -> None:
        for frame in frames:
            await self.ws.send_str(frame.to_json())

    async def close(self) -> None:
        """A clean close (close frame)."""
        await self.ws.close()

    def kill(self) -> None:
        """The network drops: the TCP connection goes away without a close frame."""
        transport = self.request.transport
        assert transport is not None
        transport.close()

    async def until_closed(self) -> None:
        """Record whatever the client sends until it goes away."""
        try:
            while True:
                await self.action()
        except ConnectionError:
            return


Script = Callable[[FakeSocket], Awaitable[None]]


@dataclass
class FakeTether:
    scripts: list[Script | int] = field(default_factory=list)
    state: JobState | None = None
    state_replies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    replies: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    jobs: list[JobState] = field(default_factory=list)
    # What the client did.
    connections: list[dict[str, str | None]] = field(default_factory=list)
    sockets: list[FakeSocket] = field(default_factory=list)
    actions: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    http_url: str = ""
    ws_url: str = ""
    active: int = 0  # WebSocket handlers still running

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every socket handler has finished, so all it received is recorded."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)

    def subscribes(self) -> list[tuple[int, dict[str, Any]]]:
        return [(i, a) for i, a in self.actions if a["action"] == "subscribe"]

    def acks(self) -> list[int]:
        return [a["seq"] for _, a in self.actions if a["action"] == "ack"]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeTether:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake server did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.http_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"

    # -- handlers -----------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        index = len(self.connections)
        self.connections.append(
            {
                "protocols": request.headers.get("Sec-WebSocket-Protocol"),
                "token": request.query.get("token"),
            }
        )
        script = self.scripts[index] if index < len(self.scripts) else 503
        if isinstance(script, int):
            return web.Response(status=script, text="refused by the script")
        ws = web.WebSocketResponse(protocols=("tether.v2",))
        await ws.prepare(request)
        socket = FakeSocket(self, ws, request)
        self.sockets.append(socket)
        self.active += 1
        try:
            with contextlib.suppress(ConnectionError):
                await script(socket)
        finally:
            self.active -= 1
        return ws

    async def _http(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        scripted = self.replies.get(f"{request.method} {request.path}")
        if scripted:
            return _json(*scripted.pop(0))
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 2 and parts[0] == "jobs":
            if self.state_replies:
                return _json(*self.state_replies.pop(0))
            if self.state is not None:
                return _json(200, self.state.model_dump(mode="json"))
            return _json(*problem_reply(404, "job_not_found", f"job {parts[1]} not found"))
        if request.method == "POST" and request.path == "/jobs":
            job_request = JobRequest.model_validate(body)
            job = job_state(0, 0, total=int(job_request.params.get("items", 0)))
            job = job.model_copy(
                update={
                    "type": job_request.type,
                    "params": job_request.params,
                    "status": JobStatus.QUEUED,
                }
            )
            created = JobCreated(job=job, resume_token="resume-token-1")
            return _json(202, created.model_dump(mode="json"))
        if request.method == "GET" and request.path == "/jobs":
            return _json(200, JobList(jobs=self.jobs, next_cursor=None).model_dump(mode="json"))
        if request.method == "DELETE" and len(parts) == 2:
            return web.Response(status=204)
        if request.method == "POST" and len(parts) == 3 and self.state is not None:
            return _json(200, self.state.model_dump(mode="json"))
        return _json(*problem_reply(404, "not_found", f"no route {request.path}"))


def _json(status_code: int, body: dict[str, Any]) -> web.Response:
    content_type = PROBLEM_CONTENT_TYPE if status_code >= 400 else "application/json"
    return web.Response(status=status_code, text=json.dumps(body), content_type=content_type)
