"""In-memory job store, run slots and run queue with DynamoDB's semantics, for the stateful
test's 1,000 examples (moto costs ~5 ms per GetItem and ~20 ms per transaction here, which
would make them minutes; the moto-backed variant of the same machine runs fewer examples).

What matters is kept exactly: a commit applies only at the version it was computed from and
appends its messages all-or-nothing, a seq is never overwritten, a lost race hands back the
current record (ALL_OLD), expired messages are not served, a slot is a set member taken only
under the limit. `before_commit` lets a test land a concurrent write between a task's read and
its commit, and `fail_commits` make the next commits fail as throttled ones do once botocore's
retries are spent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import ClientError

from shared.constants import MESSAGE_TTL_SECONDS
from shared.domain.envelope import Envelope
from shared.domain.errors import JobAlreadyExists, JobNotFound, StaleJob
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobRecord, JobStatus
from shared.services.ports import JobFilter, JobPage, MessagePage

Key = tuple[str, str]


@dataclass
class MemoryJobStore:
    """`shared.services.ports.JobStore` in memory."""

    jobs: dict[Key, JobRecord] = field(default_factory=dict)
    logs: dict[Key, dict[int, Envelope]] = field(default_factory=dict)
    before_commit: list[Callable[[], object]] = field(default_factory=list)
    fail_commits: list[str] = field(default_factory=list)  # error codes, one per commit
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def insert(self, change: JobChange) -> None:
        key = (change.job.tenant_id, change.job.job_id)
        with self._lock:
            if key in self.jobs:
                raise JobAlreadyExists(change.job.job_id)
            self._apply(key, change)

    def commit(self, change: JobChange) -> None:
        while self.before_commit:  # a concurrent writer gets there first
            self.before_commit.pop(0)()
        if self.fail_commits:
            code = self.fail_commits.pop(0)
            raise ClientError(
                {"Error": {"Code": code, "Message": "injected"}}, "TransactWriteItems"
            )
        key = (change.job.tenant_id, change.job.job_id)
        with self._lock:
            current = self.jobs.get(key)
            log = self.logs.setdefault(key, {})
            if current is None or current.version != change.expected_version:
                raise StaleJob(change.job.job_id, current)
            if any(message.seq in log for message in change.messages):
                raise StaleJob(change.job.job_id, current)
            self._apply(key, change)

    def _apply(self, key: Key, change: JobChange) -> None:
        self.jobs[key] = change.job
        log = self.logs.setdefault(key, {})
        for message in change.messages:
            assert message.seq is not None
            log[message.seq] = message

    def get(self, tenant_id: str, job_id: str) -> JobRecord:
        with self._lock:
            job = self.jobs.get((tenant_id, job_id))
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list_jobs(
        self,
        tenant_id: str,
        job_filter: JobFilter,
        *,
        limit: int,
        cursor: str | None,  # noqa: ARG002 - one page: no cursor to follow
    ) -> JobPage:
        with self._lock:
            jobs = [
                job
                for (tenant, _), job in sorted(self.jobs.items(), reverse=True)
                if tenant == tenant_id
                and (job_filter.status is None or job.status is job_filter.status)
                and (job_filter.type is None or job.type == job_filter.type)
            ]
        return JobPage(jobs=jobs[:limit], next_cursor=None)

    def read_messages(
        self, tenant_id: str, job_id: str, *, after: int, limit: int, now: datetime
    ) -> MessagePage:
        with self._lock:
            log = dict(self.logs.get((tenant_id, job_id), {}))
        live = [
            log[seq]
            for seq in sorted(log)
            if seq > after and int(log[seq].ts.timestamp()) + MESSAGE_TTL_SECONDS > now.timestamp()
        ]
        return MessagePage(messages=live[:limit], has_more=len(live) > limit)

    def delete(self, job: JobRecord) -> None:
        key = (job.tenant_id, job.job_id)
        with self._lock:
            current = self.jobs.get(key)
            if current is None or current.version != job.version:
                raise StaleJob(job.job_id, current)
            del self.jobs[key]
            self.logs.pop(key, None)

    def log(self, tenant_id: str, job_id: str) -> list[Envelope]:
        """The whole stored log, expired or not (what the invariants read)."""
        with self._lock:
            log = self.logs.get((tenant_id, job_id), {})
            return [log[seq] for seq in sorted(log)]


@dataclass
class MemoryRunSlots:
    """`shared.services.ports.RunSlots` in memory."""

    held: dict[str, set[str]] = field(default_factory=dict)

    def acquire(self, tenant_id: str, job_id: str, *, limit: int) -> bool:
        holders = self.held.setdefault(tenant_id, set())
        if job_id in holders or len(holders) < limit:
            holders.add(job_id)
            return True
        return False

    def release(self, tenant_id: str, job_id: str) -> None:
        self.held.get(tenant_id, set()).discard(job_id)

    def holders(self) -> dict[str, set[str]]:
        return {tenant: set(jobs) for tenant, jobs in self.held.items() if jobs}


@dataclass
class MemoryRunQueue:
    """`shared.services.ports.RunQueue` over the memory store: queued jobs in index order."""

    store: MemoryJobStore

    def waiting(self, tenant_id: str, *, limit: int) -> list[str]:
        with self.store._lock:
            queued = [
                job
                for (tenant, _), job in self.store.jobs.items()
                if tenant == tenant_id and job.status is JobStatus.QUEUED
            ]
        queued.sort(key=lambda job: (job.priority.rank, job.created_at, job.job_id))
        return [job.job_id for job in queued[:limit]]

    def tenants_waiting(self) -> set[str]:
        with self.store._lock:
            return {
                tenant
                for (tenant, _), job in self.store.jobs.items()
                if job.status is JobStatus.QUEUED
            }
