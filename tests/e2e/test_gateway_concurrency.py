"""Many tenants at once against the local gateway: every answer is for the caller who asked.

Lambda hands an execution environment one event at a time, and the handlers rely on it
(Powertools' resolver keeps the current event on shared state). The local gateway must give the
same guarantee, so 8 tenants send a mix of `POST /jobs`, `GET /jobs` and `GET /jobs/{id}` in
parallel over real HTTP, and no answer may carry another request's tenant, owner or job, or a
status the route does not answer.

`make test` sends 8 tenants x 50 requests: the handlers cost ~45 ms of CPU per request on moto,
so the issue's full size (8 x 2,000, about 12 CPU-minutes) would take `make test` past its
5-minute budget. Run that size with `TETHER_CONCURRENCY_REQUESTS=2000` (requests per tenant).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from infra.local.stack import LocalStack, StackOptions
from shared import constants as c
from tests.e2e.stacks import E2E_ENVIRONMENT
from tests.e2e.wire import mint

TENANTS: Final = 8
IN_FLIGHT_PER_TENANT: Final = 4  # 32 requests in flight: as many as the gateway has threads
REQUESTS_PER_TENANT: Final = int(os.environ.get("TETHER_CONCURRENCY_REQUESTS", "50"))
# Scheduled a year out: created and stored like any job, but no execution runs while we load.
LATER: Final = {"scheduledFor": (datetime.now(UTC) + timedelta(days=365)).isoformat()}


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose ticker never looks at the schedules the load creates (it reads each one
    every tick): the requests, not the ticker, are what this module measures."""
    state: Path = tmp_path_factory.mktemp("tether-state")
    # and whose tenants may create a job per request (the write rate limit is not under test)
    environment = {**E2E_ENVIRONMENT, c.ENV_WRITE_RATE_PER_MINUTE: "1000000"}
    options = StackOptions(fresh=True, persist=False, environment=environment, tick_seconds=86400)
    with LocalStack(state, options) as stack:
        yield stack


@dataclass
class Tenant:
    """One tenant's user and what the tenant created; the wrong answers it received."""

    tenant_id: str
    user: str
    token: str
    jobs: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def check(
        self, request: str, status: int, expected: int, body: Any, job_ids: list[str]
    ) -> None:
        if status != expected:
            self.wrong.append(f"{request}: {status} (expected {expected}): {str(body)[:200]}")
            return
        jobs = body["jobs"] if "jobs" in body else [body.get("job", body)]
        for job in jobs:
            owner = (job.get("tenantId"), job.get("ownerId"))
            if owner != (self.tenant_id, self.user):
                self.wrong.append(f"{request}: answered with {owner}'s job")
        if job_ids and [job.get("jobId") for job in jobs] != job_ids:
            self.wrong.append(f"{request}: answered for {[job.get('jobId') for job in jobs]}")


async def _call(
    session: aiohttp.ClientSession, url: str, tenant: Tenant, method: str, path: str
) -> tuple[int, Any]:
    body = {"type": "demo", "params": {"items": 1}, "schedule": LATER} if method == "POST" else None
    headers = {"Authorization": f"Bearer {tenant.token}"}
    async with session.request(method, url + path, json=body, headers=headers) as answer:
        return answer.status, await answer.json(content_type=None)


async def _one(session: aiohttp.ClientSession, url: str, tenant: Tenant, n: int) -> None:
    """Request `n` of a tenant: one in 10 creates a job, the others read the list or a job."""
    if n % 10 == 0:
        status, body = await _call(session, url, tenant, "POST", "/jobs")
        tenant.check(f"POST /jobs #{n}", status, 202, body, [])
        if status == 202:
            tenant.jobs.append(body["job"]["jobId"])
    elif n % 2:
        status, body = await _call(session, url, tenant, "GET", "/jobs?limit=5")
        tenant.check(f"GET /jobs #{n}", status, 200, body, [])
    else:
        job_id = tenant.jobs[n % len(tenant.jobs)]
        status, body = await _call(session, url, tenant, "GET", f"/jobs/{job_id}")
        tenant.check(f"GET /jobs/{job_id} #{n}", status, 200, body, [job_id])


async def _load(url: str, tenants: list[Tenant]) -> None:
    connector = aiohttp.TCPConnector(limit=TENANTS * IN_FLIGHT_PER_TENANT)
    async with aiohttp.ClientSession(connector=connector) as session:
        for tenant in tenants:  # one job each first, so every GET /jobs/{id} has one to read
            await _one(session, url, tenant, 0)

        async def worker(tenant: Tenant, numbers: itertools.count[int]) -> None:
            for n in numbers:
                if n >= REQUESTS_PER_TENANT:
                    return
                await _one(session, url, tenant, n)

        workers = []
        for tenant in tenants:
            numbers = itertools.count(1)  # shared by the tenant's workers: each n once
            workers += [worker(tenant, numbers) for _ in range(IN_FLIGHT_PER_TENANT)]
        await asyncio.gather(*workers)


def test_parallel_tenants_only_ever_get_their_own_answers(quiet_stack: LocalStack) -> None:
    stack = quiet_stack
    token = functools.partial(mint, stack)
    assert stack.urls is not None
    # Given 8 tenants, each with its own user
    tenants = [
        Tenant(f"tenant{i}", f"user{i}", token(tenant=f"tenant{i}", user=f"user{i}"))
        for i in range(TENANTS)
    ]

    # When they all send their requests at once, 32 in flight
    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(_load(stack.urls.http_url, tenants))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu

    # Then every answer has the route's status and only the caller's own jobs
    total = TENANTS * REQUESTS_PER_TENANT
    # The throughput figure the issue asks for (`pytest -s` shows it)
    print(
        f"{total} requests in {seconds:.1f} s ({total / seconds:.0f}/s), "
        f"{cpu:.1f} CPU s ({total / cpu:.0f} per CPU s, gateway, handlers and client together)"
    )
    assert [w for tenant in tenants for w in tenant.wrong] == []
    created = sum(len(tenant.jobs) for tenant in tenants)
    assert created == TENANTS * len(range(0, REQUESTS_PER_TENANT, 10))
