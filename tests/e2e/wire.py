"""A raw Tether client for the e2e tests: aiohttp's HTTP and WebSocket, the protocol by hand.

Deliberately not the Python client: these tests pin the wire contract that
every client, that one included, relies on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp

from infra.local.stack import LocalStack, StackUrls
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.services.auth import mint_dev_token

TERMINAL = frozenset({"completed", "failed", "cancelled"})


def mint(
    stack: LocalStack, tenant: str = "acme", user: str = "alice", secret: str | None = None
) -> str:
    """A user token with every scope; signed by the stack's issuer unless `secret` is given."""
    assert stack.secrets is not None
    return mint_dev_token(
        secret or stack.secrets.user_token_secret,
        tenant=tenant,
        subject=user,
        scopes=list(Scope),
        ttl=timedelta(hours=1),
        clock=SystemClock(),
    )


@dataclass
class Api:
    session: aiohttp.ClientSession
    urls: StackUrls
    token: str

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method, self.urls.http_url + path, json=body, headers=headers
        ) as answer:
            text = await answer.text()
            return answer.status, json.loads(text) if text else None

    async def create_demo(self, items: int, delay_ms: int) -> tuple[str, str]:
        status, created = await self.call(
            "POST", "/jobs", {"type": "demo", "params": {"items": items, "delayMs": delay_ms}}
        )
        assert status == 202, created
        return created["job"]["jobId"], created["resumeToken"]

    async def job(self, job_id: str) -> dict[str, Any]:
        status, state = await self.call("GET", f"/jobs/{job_id}")
        assert status == 200, state
        result: dict[str, Any] = state
        return result

    async def wait_until(self, job_id: str, ready: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await self.job(job_id)
            if ready(state):
                return state
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} never got there: {state}")


@dataclass
class Watcher:
    """One WebSocket connection; records every envelope of its job, unpacking batches."""

    socket: aiohttp.ClientWebSocketResponse
    job_id: str
    seqs: list[int] = field(default_factory=list)  # in arrival order, duplicates kept
    frames: list[dict[str, Any]] = field(default_factory=list)
    status: str | None = None

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, urls: StackUrls, token: str, job_id: str
    ) -> Watcher:
        ws = await session.ws_connect(urls.ws_url, protocols=("tether.v2", f"bearer.{token}"))
        assert ws.protocol == "tether.v2"
        return cls(ws, job_id)

    async def send(self, action: str, **fields: Any) -> None:
        await self.socket.send_json({"action": action, "jobId": self.job_id, **fields})

    async def subscribe(self, since: int | None = None) -> dict[str, Any]:
        """Subscribe; the `subscribed` reply (live messages may come before it and are kept)."""
        await self.send("subscribe", **({} if since is None else {"since": since}))
        return await self.next_of("subscribed")

    async def next_of(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = await self.receive(deadline - time.monotonic())
            if frame["type"] == kind:
                return frame
        raise AssertionError(f"no {kind} frame within {timeout} s")

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        message = await self.socket.receive(timeout=timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        self.frames.append(frame)
        envelopes = frame["data"]["messages"] if frame["type"] == "batch" else [frame]
        for envelope in envelopes:
            if envelope.get("seq") is not None and envelope.get("jobId") == self.job_id:
                self.seqs.append(envelope["seq"])
                if envelope["type"] == "status":
                    self.status = envelope["data"]["status"]
        return frame

    async def until(self, done: Any, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; seqs so far {self.distinct}")
            await self.receive(remaining)

    async def until_terminal(self, timeout: float = 20) -> None:
        await self.until(lambda w: w.status in TERMINAL, timeout)

    @property
    def distinct(self) -> list[int]:
        """What a client keeps: each seq once (it drops those it has seen)."""
        return sorted(set(self.seqs))

    def kill(self) -> None:
        """Drop the TCP connection without a close frame, like a phone losing its network."""
        raw = self.socket.get_extra_info("socket")  # asyncio's TransportSocket
        assert raw is not None
        raw.shutdown(socket.SHUT_RDWR)
