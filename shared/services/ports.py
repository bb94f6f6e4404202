"""The interfaces the services need from the outside world, and the pages they get back.

Services depend on these Protocols only; the DynamoDB adapter implements them and tests may
pass any object of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.domain.auth import Principal
from shared.domain.envelope import Envelope
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobRecord, JobStatus


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: JobStatus | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Envelope]
    has_more: bool

    @property
    def last_seq(self) -> int | None:
        return self.messages[-1].seq if self.messages else None


class JobStore(Protocol):
    def insert(self, change: JobChange) -> None:
        """Write a new job and its first messages; JobAlreadyExists if the id is taken."""
        ...

    def commit(self, change: JobChange) -> None:
        """Replace the job at `change.expected_version` and append its messages, atomically.

        Raises StaleJob (with the current record when the store has it) if the job moved on.
        """
        ...

    def get(self, tenant_id: str, job_id: str) -> JobRecord:
        """The job, read strongly consistent; JobNotFound if missing or another tenant's."""
        ...

    def list_jobs(
        self, tenant_id: str, job_filter: JobFilter, *, limit: int, cursor: str | None
    ) -> JobPage: ...

    def read_messages(
        self, tenant_id: str, job_id: str, *, after: int, limit: int, now: datetime
    ) -> MessagePage:
        """Messages with seq > after in order, skipping those whose TTL has passed."""
        ...

    def delete(self, job: JobRecord) -> None:
        """Remove a terminal job and its whole log; StaleJob if it changed since read."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    connection_id: str
    principal: Principal
    connected_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Subscriber:
    connection_id: str
    tenant_id: str
    subject: str
    job_id: str


@dataclass(frozen=True, slots=True)
class DeliveryCursor:
    """How far one user has acknowledged one job's log, in one generation."""

    seq: int
    epoch: str


class PostOutcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"


class ConnectionPoster(Protocol):
    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        """Send one frame; GONE when the connection no longer exists. Raises on other errors."""
        ...


class ExecutionGateway(Protocol):
    """The JobRunner's executions (Step Functions): start one, release a waiting task."""

    def start(self, name: str, run_input: dict[str, Any]) -> str:
        """Start an execution named `name` (idempotent on the name); its ARN."""
        ...

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> bool:
        """Release the task waiting on `task_token`; False when it waits no longer."""
        ...
