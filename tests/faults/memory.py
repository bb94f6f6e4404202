"""In-memory job store, run slots, run queue and connection store with DynamoDB's semantics,
for the property tests' 1,000 examples (the stateful runner test, the recovery property): moto
costs ~2 ms per GetItem and ~5 ms per query here, which would make them minutes; the
moto-backed variant of each runs fewer examples over the real adapters.

What matters is kept exactly: a commit applies only at the version it was computed from and
appends its messages all-or-nothing, a seq is never overwritten, a lost race hands back the
current record (ALL_OLD), expired messages, connections and subscriptions are not served, a
delivery cursor only moves forward within an epoch, a slot is a set member taken only under the
limit. `before_commit` lets a test land a concurrent write between a task's read and its
commit, and `fail_commits` make the next commits fail as throttled ones do once botocore's
retries are spent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import ClientError

from shared.adapters.dynamo_connections import CONNECTION_TTL
from shared.constants import MESSAGE_TTL_SECONDS
from shared.domain.auth import Principal
from shared.domain.envelope import Envelope
from shared.domain.errors import JobAlreadyExists, JobNotFound, StaleJob
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobRecord, JobStatus
from shared.services.ports import (
    ConnectionRecord,
    DeliveryCursor,
    JobFilter,
    JobPage,
    MessagePage,
    Subscriber,
)

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


@dataclass
class MemoryConnectionStore:
    """`shared.services.websocket.ConnectionStore` (plus the dispatcher's `subscribers`) in
    memory, with the DynamoDB adapter's rules: a connection and its subscriptions expire
    together, expired ones are never read, a delivery cursor only moves forward within an epoch
    (a new epoch starts over)."""

    connections: dict[str, ConnectionRecord] = field(default_factory=dict)
    subscriptions: dict[str, dict[Key, int]] = field(default_factory=dict)  # → expiresAt
    cursors: dict[tuple[str, str, str], DeliveryCursor] = field(default_factory=dict)

    def connect(self, connection_id: str, principal: Principal, now: datetime) -> None:
        expires = int((now + CONNECTION_TTL).timestamp())
        self.connections[connection_id] = ConnectionRecord(
            connection_id, principal, int(now.timestamp()), expires
        )

    def get(self, connection_id: str, now: datetime) -> ConnectionRecord | None:
        record = self.connections.get(connection_id)
        return record if record is not None and record.expires_at > now.timestamp() else None

    def disconnect(self, connection_id: str) -> int:
        gone = len(self.subscriptions.pop(connection_id, {}))
        return gone + (self.connections.pop(connection_id, None) is not None)

    def subscribe(self, connection: ConnectionRecord, job_id: str, now: datetime) -> None:  # noqa: ARG002 - the port's signature
        key = (connection.principal.tenant_id, job_id)
        self.subscriptions.setdefault(connection.connection_id, {})[key] = connection.expires_at

    def unsubscribe(self, connection_id: str, tenant_id: str, job_id: str) -> None:
        self.subscriptions.get(connection_id, {}).pop((tenant_id, job_id), None)

    def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> list[Subscriber]:
        return [
            Subscriber(
                connection_id, tenant_id, self.connections[connection_id].principal.subject, job_id
            )
            for connection_id, keys in self.subscriptions.items()
            if keys.get((tenant_id, job_id), 0) > now.timestamp()
        ]

    def cursor(self, tenant_id: str, subject: str, job_id: str) -> DeliveryCursor | None:
        return self.cursors.get((tenant_id, subject, job_id))

    def advance_cursor(
        self,
        tenant_id: str,
        subject: str,
        job_id: str,
        cursor: DeliveryCursor,
        now: datetime,  # noqa: ARG002 - the port's signature
    ) -> bool:
        key = (tenant_id, subject, job_id)
        current = self.cursors.get(key)
        if current is not None and current.epoch == cursor.epoch and current.seq >= cursor.seq:
            return False
        self.cursors[key] = cursor
        return True
