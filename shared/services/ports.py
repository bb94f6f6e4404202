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
from shared.domain.models import JobRecord, JobStatus, Platform
from shared.domain.push import Device


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


# -- push (DESIGN §5 devices, §7) ---------------------------------------------------------------


class CursorReader(Protocol):
    def cursor(self, tenant_id: str, subject: str, job_id: str) -> DeliveryCursor | None:
        """How far `subject` acknowledged the job's log (any of their connections)."""
        ...


class DeviceStore(Protocol):
    """The push devices of one user, keyed by tenant and owner: nobody reaches another's."""

    def get(self, tenant_id: str, owner_id: str, device_id: str) -> Device | None: ...
    def put(self, device: Device) -> None: ...
    def list(self, tenant_id: str, owner_id: str) -> list[Device]: ...
    def delete(self, tenant_id: str, owner_id: str, device_id: str) -> bool:
        """True when the device existed."""
        ...

    def mark_disabled(
        self, tenant_id: str, owner_id: str, device_id: str, reason: str, now: datetime
    ) -> None: ...


class EndpointDisabled(Exception):
    """SNS disabled the endpoint (APNs/FCM said the token is invalid) or it no longer exists."""


@dataclass(frozen=True, slots=True)
class EndpointState:
    enabled: bool
    owner_key: str | None  # the endpoint's CustomUserData: who registered it last


class PushGateway(Protocol):
    """SNS mobile push: one platform endpoint per device, on the platform's application."""

    def configured(self, platform: Platform) -> bool: ...

    def register(
        self, platform: Platform, token: str, *, owner_key: str, endpoint_arn: str | None
    ) -> str:
        """Create or repair the device's endpoint (token, enabled, owner); its ARN."""
        ...

    def endpoint(self, endpoint_arn: str) -> EndpointState | None:
        """The endpoint's state; None when it no longer exists."""
        ...

    def publish(self, endpoint_arn: str, message: str, attributes: dict[str, str]) -> str:
        """Send one `MessageStructure=json` message; its id. EndpointDisabled when refused."""
        ...

    def delete(self, endpoint_arn: str) -> None: ...
