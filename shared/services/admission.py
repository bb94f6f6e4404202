"""Priorities and per-tenant concurrency: which queued job may start, and when.

A job runs only while it holds one of its tenant's run slots. Launching takes a slot or leaves
the job `queued`; when a job ends (the JobRunner's finalize) its slot is given back and the
tenant's waiting jobs are offered slots, highest priority first, oldest first within a
priority, until the slots are full again. Slot writes are idempotent (a set of job ids, see
`shared.adapters.dynamo_limits.DynamoRunSlots`), so a duplicated launch or finalize is harmless,
and the hourly cleanup reconciles the slots with the jobs (`reconcile`), so a slot whose
execution died is never lost and a waiting job never waits forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from shared.domain.errors import JobNotFound, UnreadableJob
from shared.domain.models import JobStatus
from shared.services.jobs import JobRef, JobService
from shared.services.ports import RunQueue, RunSlots

Launch = Callable[[JobRef], str]
# How many waiting jobs one fill looks at; more than any sane slot count frees at once.
FILL_WINDOW: Final = 25


@dataclass(frozen=True, slots=True)
class Reconciled:
    released: list[str] = field(default_factory=list)  # holders whose job ended or vanished
    relaunched: list[str] = field(default_factory=list)  # holders still queued: launch again
    started: list[str] = field(default_factory=list)  # waiting jobs given the freed slots


class Admission:
    def __init__(
        self, jobs: JobService, slots: RunSlots, queue: RunQueue, *, max_running: int
    ) -> None:
        self._jobs = jobs
        self._slots = slots
        self._queue = queue
        self._max_running = max_running

    def admit(self, ref: JobRef, launch: Launch) -> bool:
        """Launch the job if a slot is free; else it waits `queued` for one (False)."""
        if not self._slots.acquire(ref.tenant_id, ref.job_id, limit=self._max_running):
            return False
        launch(ref)
        return True

    def release(self, ref: JobRef, launch: Launch) -> list[str]:
        """Give the job's slot back and start whoever waits; the ids started."""
        self._slots.release(ref.tenant_id, ref.job_id)
        return self.fill(ref.tenant_id, launch)

    def fill(self, tenant_id: str, launch: Launch) -> list[str]:
        """Offer free slots to the tenant's waiting jobs, in queue order; the ids started."""
        started: list[str] = []
        for job_id in self._queue.waiting(tenant_id, limit=FILL_WINDOW):
            ref = JobRef(tenant_id, job_id)
            if not self._slots.acquire(tenant_id, job_id, limit=self._max_running):
                break
            if not self._still_queued(ref):  # the index lags: cancelled or started meanwhile
                self._slots.release(tenant_id, job_id)
                continue
            launch(ref)
            started.append(job_id)
        return started

    def reconcile(self, launch: Launch) -> Reconciled:
        """Free the slots of jobs that ended or vanished, launch holders whose launch never got
        through, and give every tenant's free slots to its waiting jobs."""
        result = Reconciled()
        for tenant_id, holders in self._slots.holders().items():
            for job_id in sorted(holders):
                ref = JobRef(tenant_id, job_id)
                try:
                    job = self._jobs.get(ref)
                except (JobNotFound, UnreadableJob):  # an unreadable job cannot run either
                    job = None
                if job is None or job.is_terminal:
                    self._slots.release(tenant_id, job_id)
                    result.released.append(job_id)
                elif job.status is JobStatus.QUEUED and job.execution_arn is None:
                    # The launch after taking the slot never got through (a launch records its
                    # execution on the job; the cleanup's sweep looks after recorded ones).
                    launch(ref)
                    result.relaunched.append(job_id)
        for tenant_id in sorted(self._queue.tenants_waiting()):
            result.started.extend(self.fill(tenant_id, launch))
        return result

    def _still_queued(self, ref: JobRef) -> bool:
        try:
            return self._jobs.get(ref).status is JobStatus.QUEUED
        except (JobNotFound, UnreadableJob):
            return False
