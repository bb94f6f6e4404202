"""Many writers on one job: exact counters, and a log numbered 1..N without gap or duplicate."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.domain.clock import SequentialIds
from shared.domain.envelope import MessageType
from shared.domain.models import JobRequest, JobStatus, ProgressDelta
from shared.services.jobs import JobRef, JobService

if TYPE_CHECKING:
    from shared.adapters.dynamo_jobs import DynamoJobStore
    from shared.domain.clock import ManualClock

THREADS = 8
# 8 threads x 25 updates keep every commit racing the others (the optimistic lock and the seq
# collisions are hit hundreds of times a run) in `make test`; TETHER_CONTENTION_UPDATES=200
# runs the original 1,600 updates.
UPDATES_PER_THREAD = int(os.environ.get("TETHER_CONTENTION_UPDATES", "25"))


def _hammer(service: JobService, ref: JobRef, worker: int, clock: ManualClock | None) -> None:
    for i in range(UPDATES_PER_THREAD):
        if clock is not None:
            clock.advance(milliseconds=100)
        failed = 1 if (worker + i) % 10 == 0 else 0
        service.report_progress(ref, ProgressDelta(succeeded=1 - failed, failed=failed, skipped=1))


def _run(service: JobService, clock: ManualClock | None) -> tuple[JobRef, int]:
    job = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="u1")
    ref = JobRef(job.tenant_id, job.job_id)
    service.start(ref, total=THREADS * UPDATES_PER_THREAD * 2)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_hammer, service, ref, w, clock) for w in range(THREADS)]
        for future in futures:
            future.result()
    done = service.complete(ref)
    return ref, done.seq


def _all_seqs(service: JobService, ref: JobRef) -> list[int]:
    seqs: list[int] = []
    after = 0
    while True:
        page = service.messages_after(ref, after, limit=100)
        seqs.extend(m.seq or 0 for m in page.messages)
        if not page.has_more or page.last_seq is None:
            return seqs
        after = page.last_seq


def _assert_exact(service: JobService, ref: JobRef, head: int) -> list[int]:
    """Counters are exact, the log is 1..head, and its last progress has the final counters."""
    job = service.get(ref)
    n = THREADS * UPDATES_PER_THREAD
    failed = sum(1 for w in range(THREADS) for i in range(UPDATES_PER_THREAD) if (w + i) % 10 == 0)
    assert job.status is JobStatus.COMPLETED
    assert job.counters.processed == 2 * n
    assert job.counters.skipped == n
    assert job.counters.failed == failed
    assert job.counters.succeeded == n - failed
    seqs = _all_seqs(service, ref)
    assert seqs == list(range(1, head + 1))  # gap-free, ordered, no duplicate
    last = service.messages_after(ref, head - 2).messages
    assert last[0].type is MessageType.PROGRESS
    assert last[0].data["processed"] == 2 * n
    return seqs


def test_every_update_announced_under_contention(store: DynamoJobStore, clock: ManualClock) -> None:
    # Given coalescing off: every one of the updates must produce one message
    service = JobService(store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta())

    # When 8 threads report their updates on one job
    ref, head = _run(service, clock=None)

    # Then counters are exact and the log is 1..N: queued, running, one progress per update,
    # completed
    seqs = _assert_exact(service, ref, head)
    assert len(seqs) == 2 + THREADS * UPDATES_PER_THREAD + 1


def test_coalesced_updates_under_contention_never_drop_the_last_counters(
    service: JobService, clock: ManualClock
) -> None:
    # Given the default 250 ms coalescing and a clock moving 100 ms per update
    # When 8 threads report their updates
    ref, head = _run(service, clock=clock)

    # Then fewer messages than updates, yet exact counters and a gap-free log
    seqs = _assert_exact(service, ref, head)
    assert len(seqs) < THREADS * UPDATES_PER_THREAD
