"""Stacks started and stopped inside a test: restarts, `--fresh`, two stacks, services.

No module-wide stack here: one process holds one stack at a time (moto's state and the
handlers' environment are per process).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from infra.local.stack import LocalStack, StackAlreadyRunning, StackOptions
from shared import constants as c
from tests.e2e.stacks import E2E_ENVIRONMENT
from tests.e2e.wire import Api, mint


def _stack(
    state: Path, *, fresh: bool = False, persist: bool = True, tick_seconds: float = 1.0
) -> LocalStack:
    options = StackOptions(
        fresh=fresh,
        persist=persist,
        wait_scale=0.0,
        environment=E2E_ENVIRONMENT,
        tick_seconds=tick_seconds,
    )
    return LocalStack(state, options)


def test_a_restart_keeps_the_tables_and_finishes_the_job_that_was_running(
    tmp_path: Path,
) -> None:
    # Given a stack with a finished job and one still running when it stops
    first = _stack(tmp_path)
    urls = first.start()
    try:
        token = mint(first)

        async def before() -> tuple[str, str]:
            async with aiohttp.ClientSession() as session:
                api = Api(session, urls, token)
                done, _ = await api.create_demo(items=30, delay_ms=0)
                await api.wait_until(done, lambda s: s["status"] == "completed")
                running, _ = await api.create_demo(items=300, delay_ms=10)
                await api.wait_until(running, lambda s: s["counters"]["processed"] >= 40)
                return done, running

        done, running = asyncio.run(before())
    finally:
        first.stop()
    assert first.saved is not None
    assert first.saved.items > 0

    # When it starts again on the same state folder
    second = _stack(tmp_path)
    urls = second.start()
    try:

        async def after() -> tuple[dict[str, Any], dict[str, Any], list[int]]:
            async with aiohttp.ClientSession() as session:
                api = Api(session, urls, mint(second))
                kept = await api.job(done)
                finished = await api.wait_until(running, lambda s: s["status"] == "completed")
                _, log = await api.call("GET", f"/jobs/{running}/messages?after=0&limit=100")
                return kept, finished, [m["seq"] for m in log["messages"]]

        kept, finished, seqs = asyncio.run(after())
    finally:
        second.stop()

    # Then the finished job is still there, and the running one carried on to the end,
    # every item counted once and its log still gap-free
    assert second.restored is not None
    assert second.recovered.jobs_relaunched == 1
    assert kept["status"] == "completed"
    assert (finished["counters"]["succeeded"], finished["counters"]["processed"]) == (300, 300)
    assert seqs == list(range(1, finished["seq"] + 1))


def test_fresh_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "tables.json").write_text('{"version": 1, "tables": {"jobs": [{"x": 1}]}}')

    stack = _stack(tmp_path, fresh=True, persist=False)
    stack.start()
    stack.stop()

    assert stack.restored is None
    assert not (tmp_path / "tables.json").exists()


def test_a_second_stack_is_refused(tmp_path: Path) -> None:
    first = _stack(tmp_path, fresh=True, persist=False)
    urls = first.start()
    try:
        # When another stack starts, in this process or on the same folder, while one runs
        for state in (tmp_path / "elsewhere", tmp_path):
            with pytest.raises(StackAlreadyRunning):
                _stack(state, fresh=True, persist=False).start()

        # Then the first one's address file is left alone
        assert json.loads((tmp_path / "dev.json").read_text())["httpUrl"] == urls.http_url
    finally:
        first.stop()
    assert not (tmp_path / "dev.json").exists()


def test_background_services_start_after_the_stack_and_stop_before_it(tmp_path: Path) -> None:
    events: list[str] = []

    class Ticker:
        name = "ticker"

        def start(self) -> None:
            events.append(f"start {os.environ[c.ENV_STATE_MACHINE_ARN].startswith('arn:')}")

        def stop(self) -> None:
            events.append("stop")

    with LocalStack(tmp_path, StackOptions(fresh=True, persist=False), services=[Ticker()]):
        events.append("running")

    assert events == ["start True", "running", "stop"]


def test_tether_dev_refuses_a_state_folder_another_process_serves(tmp_path: Path) -> None:
    running = _stack(tmp_path, fresh=True, persist=False)
    urls = running.start()
    try:
        # When `tether dev` starts in another process on the same folder
        command = [sys.executable, "-m", "infra.cli", "dev", "--port", "0", "--once"]
        other = subprocess.run(  # noqa: S603 - our own CLI
            [*command, "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

        # Then it says where the running one is and leaves it alone
        assert other.returncode == 1
        assert f"already runs at {urls.http_url}" in other.stdout
        assert json.loads((tmp_path / "dev.json").read_text())["httpUrl"] == urls.http_url
    finally:
        running.stop()


def test_a_running_stack_saves_its_tables_now_and_then(tmp_path: Path) -> None:
    options = StackOptions(fresh=True, snapshot_every_seconds=0.05)
    with LocalStack(tmp_path, options):
        # While it runs (no stop yet), the tables reach the disk on their own
        deadline = time.monotonic() + 10
        while not (tmp_path / "tables.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        saved_while_running = (tmp_path / "tables.json").exists()

    assert saved_while_running


def test_a_restart_brings_back_the_schedules_moto_forgot(tmp_path: Path) -> None:
    # Given a job scheduled for a few seconds from now and an hourly schedule, on a stack whose
    # ticker never ticks (it waits a period first): the job's time cannot come before it stops,
    # however slow the machine
    first = _stack(tmp_path, tick_seconds=3600)
    urls = first.start()
    try:
        later = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)

        async def before() -> tuple[str, str]:
            async with aiohttp.ClientSession() as session:
                api = Api(session, urls, mint(first))
                job = {"type": "demo", "params": {"items": 20}}
                when = {"scheduledFor": later.isoformat().replace("+00:00", "Z")}
                _, created = await api.call("POST", "/jobs", {**job, "schedule": when})
                hourly = {"name": "hourly", "expression": "rate(1 hour)", "job": job}
                status, schedule = await api.call("POST", "/schedules", hourly)
                assert status == 201, schedule
                return created["job"]["jobId"], schedule["scheduleId"]

        job_id, schedule_id = asyncio.run(before())
    finally:
        first.stop()  # its at(...) schedule never fired here

    # When the stack starts again (moto's Scheduler is empty then)
    second = _stack(tmp_path)
    urls = second.start()
    try:

        async def after() -> dict[str, Any]:
            async with aiohttp.ClientSession() as session:
                api = Api(session, urls, mint(second))
                return await api.wait_until(job_id, lambda s: s["status"] == "completed")

        finished = asyncio.run(after())
        names = [
            s["Name"]
            for s in second.aws.client("scheduler").list_schedules(GroupName="tether")["Schedules"]
        ]
    finally:
        second.stop()

    # Then both schedules were put back, and the scheduled job ran when its time came
    assert second.recovered.schedules_restored == 2
    assert any(schedule_id in name for name in names)
    assert finished["counters"]["succeeded"] == 20
