"""`tether dev` killed with SIGKILL mid-job, then started again on the same state folder.

The local stack's parity rule: an unclean stop loses nothing acknowledged (the job answered
202, every message a client received), and where history could still be lost, the epoch
changes; a client reconnecting from where it was gets a gap-free replay, or `recovered: false`
with a `resync`, never an error; the job then runs to its end with exact counters.

The stack runs as a subprocess (a SIGKILL must hit a real process, not this one).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from infra.local.secrets import local_secrets
from infra.local.stack import StackUrls
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.services.auth import mint_dev_token
from tests.e2e.stacks import E2E_ENVIRONMENT
from tests.e2e.wire import Api, Watcher

READY_TIMEOUT = 240.0  # a cold start on a busy 2-core machine
ITEMS = 200
ENVELOPE_FIELDS = ("type", "seq", "epoch", "ts", "data")


@dataclass
class DevProcess:
    process: subprocess.Popen[str]
    urls: StackUrls
    summary: str  # the "Tether is running locally (...)" line
    output: list[str]  # what it printed after the banner (its logs), read as it comes
    reader: threading.Thread


def _drain(stream: IO[str], into: list[str]) -> None:
    """Read the stack's output until it closes: a pipe nobody reads fills up (64 KB of logs),
    and the stack would block on its next print, shutdown included."""
    for line in stream:
        into.append(line)


def _start(state: Path) -> DevProcess:
    command = [sys.executable, "-m", "infra.cli", "dev", "--port", "0", "--state-dir", str(state)]
    environment = {**os.environ, **E2E_ENVIRONMENT, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment
    )
    found: dict[str, str] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    assert process.stdout is not None
    for line in process.stdout:  # the banner ends with the dev token's line
        if line.startswith("Tether is running locally"):
            found["summary"] = line.strip()
        for label, key in (("HTTP API", "http"), ("WebSocket", "ws"), ("local AWS", "aws")):
            if line.strip().startswith(label):
                found[key] = line.split()[2 if label != "WebSocket" else 1]
        if line.startswith("Ctrl-C stops") or time.monotonic() > deadline:
            break
    assert {"summary", "http", "ws", "aws"} <= found.keys(), found
    output: list[str] = []
    reader = threading.Thread(target=_drain, args=(process.stdout, output), daemon=True)
    reader.start()
    urls = StackUrls(found["http"], found["ws"], found["http"], found["aws"])
    return DevProcess(process, urls, found["summary"], output, reader)


def _token(state: Path) -> str:
    return mint_dev_token(
        local_secrets(state).user_token_secret,
        tenant="acme",
        subject="alice",
        scopes=list(Scope),
        ttl=timedelta(hours=1),
        clock=SystemClock(),
    )


@pytest.fixture
def processes() -> Iterator[list[DevProcess]]:
    started: list[DevProcess] = []
    yield started
    for dev in started:  # whatever the test did: none left running
        if dev.process.poll() is None:
            dev.process.kill()
        dev.process.wait(30)
        dev.reader.join(30)  # the pipe's end: it has read everything
        if dev.process.stdout is not None:
            dev.process.stdout.close()


def _envelope(message: dict[str, Any]) -> dict[str, Any]:
    return {name: message.get(name) for name in ENVELOPE_FIELDS}


def test_a_sigkill_mid_job_loses_nothing_a_client_saw(
    tmp_path: Path, processes: list[DevProcess]
) -> None:
    # Given `tether dev` running a job, and a client that received some of its messages
    first = _start(tmp_path)
    processes.append(first)
    token = _token(tmp_path)

    async def before() -> tuple[str, dict[int, dict[str, Any]]]:
        async with aiohttp.ClientSession() as session:
            api = Api(session, first.urls, token)
            job_id, _ = await api.create_demo(items=ITEMS, delay_ms=10)
            watcher = await Watcher.connect(session, first.urls, token, job_id)
            await watcher.subscribe(since=0)
            await watcher.until(lambda w: len(w.distinct) >= 5, timeout=60)
            assert watcher.status not in ("completed", "failed", "cancelled")
            seen = {}
            for frame in watcher.frames:
                envelopes = frame["data"]["messages"] if frame["type"] == "batch" else [frame]
                for envelope in envelopes:
                    if envelope.get("seq") is not None:
                        seen[envelope["seq"]] = _envelope(envelope)
            return job_id, seen

    job_id, seen = asyncio.run(before())

    # When the process is killed outright, and started again on the same folder
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(30)
    second = _start(tmp_path)
    processes.append(second)
    last_seq = max(seen)
    epoch = seen[last_seq]["epoch"]

    async def after() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], Watcher]:
        async with aiohttp.ClientSession() as session:
            api = Api(session, second.urls, token)
            kept = await api.job(job_id)
            _, log = await api.call("GET", f"/jobs/{job_id}/messages?after=0&limit=100")
            watcher = await Watcher.connect(session, second.urls, token, job_id)
            await watcher.send("subscribe", since=last_seq, epoch=epoch)
            reply = await watcher.next_of("subscribed")
            if not reply["data"]["recovered"]:
                await watcher.next_of("resync")
            await watcher.until_terminal(timeout=120)
            finished = await api.wait_until(job_id, lambda s: s["status"] == "completed", 60)
            _, full = await api.call("GET", f"/jobs/{job_id}/messages?after=0&limit=100")
            pages = full["messages"]
            while full.get("hasMore"):
                after_seq = pages[-1]["seq"]
                _, full = await api.call(
                    "GET", f"/jobs/{job_id}/messages?after={after_seq}&limit=100"
                )
                pages.extend(full["messages"])
            assert [m["seq"] for m in pages] == list(range(1, finished["seq"] + 1))
            return kept, log["messages"], {**finished, "reply": reply["data"]}, watcher

    kept, restored_log, finished, watcher = asyncio.run(after())
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(120) == 0

    # Then the restart says the last run died, and the job is there: in the same epoch with
    # every seq the client saw, unchanged, or in a new epoch
    assert "did not stop cleanly" in second.summary
    restored = {m["seq"]: _envelope(m) for m in restored_log}
    if kept["epoch"] == epoch:
        assert kept["seq"] >= last_seq
        assert {seq: restored.get(seq) for seq in seen} == seen
    # and the client's reconnect was answered, never refused: a gap-free replay from its
    # position, or recovered false with the state
    reply = finished["reply"]
    assert not [f for f in watcher.frames if f["type"] == "error"]
    if reply["recovered"]:
        assert reply["epoch"] == epoch
        assert watcher.distinct == list(range(last_seq + 1, finished["seq"] + 1))
    else:
        assert reply["epoch"] != epoch or reply["seq"] < last_seq
    # and the job ran to its end, every item counted once
    counters = finished["counters"]
    assert finished["status"] == "completed"
    assert (counters["total"], counters["processed"], counters["succeeded"]) == (ITEMS,) * 3
    assert (counters["failed"], counters["skipped"]) == (0, 0)
