"""What the local stack feels like: how fast `tether dev` is ready, how fast progress arrives.

Run with `make bench`. Prints, never asserts (wall-clock figures depend on the machine):

* the time from starting `tether dev` (a fresh process, imports included) to its `dev.json`;
* end-to-end latency from a progress write (the DynamoDB transaction that appends the message
  has returned) to a WebSocket client's receipt: messages stream → poller → dispatcher →
  `@connections` → gateway → socket, p50/p99 over 1,000 messages to one client, then over
  30 messages to each of 200 clients subscribed to the same job.

Writes are paced (not a burst) so that the figures are latency, not queueing. With 200 clients
each message is 200 PostToConnection calls, each a boto3 request (~2 ms of CPU) to the
gateway, all in one Python process on 2 cores: the fan-out, not the stream, sets that figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from infra.local.stack import LocalStack, StackOptions
from shared import constants as c
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.wiring import job_service, load_settings
from tests.e2e.wire import mint

TENANT = "bench"


@dataclass
class Receipts:
    at: dict[int, float] = field(default_factory=dict)  # seq → perf_counter at receipt


def time_to_ready(state: Path) -> tuple[float, float]:
    """Seconds from spawning `tether dev` to its dev.json, and from SIGINT to its exit."""
    command = [sys.executable, "-m", "infra.cli", "dev", "--port", "0", "--fresh"]
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [*command, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (state / "dev.json").exists():
            if process.poll() is not None or time.perf_counter() - started > 120:
                raise RuntimeError("tether dev did not get ready")
            time.sleep(0.01)
        ready = time.perf_counter() - started
        stopping = time.perf_counter()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        return ready, time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _client(
    session: aiohttp.ClientSession, url: str, token: str, job_id: str, receipts: Receipts
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, protocols=("tether.v2", f"bearer.{token}"))
    await ws.send_json({"action": "subscribe", "jobId": job_id})
    while True:
        frame = json.loads((await ws.receive(timeout=30)).data)
        if frame["type"] == "subscribed":
            break

    async def read() -> None:
        async for message in ws:
            received = time.perf_counter()
            frame = json.loads(message.data)
            if frame["type"] == "progress":
                receipts.at.setdefault(frame["seq"], received)

    asyncio.get_running_loop().create_task(read())
    return ws


def _write(
    jobs: JobService, ref: JobRef, count: int, pace: float, written: dict[int, float]
) -> None:
    record = jobs.get(ref)
    for _ in range(count):
        record = jobs.report_progress(ref, ProgressDelta(succeeded=1), current=record)
        written[record.seq] = time.perf_counter()
        time.sleep(pace)


async def latency(
    stack: LocalStack, *, clients: int, messages: int, pace: float
) -> tuple[list[float], int]:
    """Latencies in ms (every client's every message) and how many receipts were missing."""
    assert stack.urls is not None
    jobs = job_service(load_settings())
    job = jobs.create_job(JobRequest(type="demo"), tenant_id=TENANT, owner_id="bench")
    ref = JobRef(TENANT, job.job_id)
    jobs.start(ref, total=messages)
    token = mint(stack, tenant=TENANT)
    receipts = [Receipts() for _ in range(clients)]
    written: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = [
            await _client(session, stack.urls.ws_url, token, job.job_id, r) for r in receipts
        ]
        writer = threading.Thread(target=_write, args=(jobs, ref, messages, pace, written))
        writer.start()
        await asyncio.to_thread(writer.join)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(r.at) < messages for r in receipts):
            await asyncio.sleep(0.05)
        for ws in sockets:
            await ws.close()
    samples = [
        (r.at[seq] - at) * 1000 for r in receipts for seq, at in written.items() if seq in r.at
    ]
    missing = clients * messages - len(samples)
    return samples, missing


def _percentiles(samples: list[float]) -> str:
    if len(samples) < 2:
        return "not enough samples"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, max {max(samples):.1f} ms "
        f"over {len(samples)} receipts"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        ready, stopped = time_to_ready(Path(state))
    print(f"`tether dev` start to ready (new process, imports included): {ready:.2f} s;")
    print(f"  Ctrl-C to exited: {stopped:.2f} s", flush=True)
    # Quiet logs: one JSON line per delivery would cost more than the delivery. (Read when the
    # handlers' modules are imported, which the stack does on start.)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    logging.getLogger("tether-local").setLevel(logging.WARNING)  # the gateway's, made earlier
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    options = StackOptions(
        fresh=True, persist=False, environment={c.ENV_PROGRESS_MIN_INTERVAL_MS: "0"}
    )
    figures: list[str] = []
    # The handlers print their metrics (EMF lines, as in Lambda) to stdout: keep them out.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        tempfile.TemporaryDirectory() as state,
        LocalStack(Path(state), options) as stack,
    ):
        samples, missing = asyncio.run(latency(stack, clients=1, messages=1000, pace=0.01))
        figures.append("progress write -> client receipt, 1 client, 1,000 messages (100/s):")
        figures.append(f"  {_percentiles(samples)}; missing {missing}")
        samples, missing = asyncio.run(latency(stack, clients=200, messages=30, pace=1.0))
        figures.append(
            "progress write -> client receipt, 200 clients on one job, 30 messages (1/s):"
        )
        figures.append(f"  {_percentiles(samples)}; missing {missing}")
    print("\n".join(figures))


if __name__ == "__main__":
    main()
