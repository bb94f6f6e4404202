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
from shared.domain.schedules import ScheduleRecord


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


@dataclass(frozen=True, slots=True)
class StartedExecution:
    """What starting an execution by name found: its ARN, and whether it is running."""

    arn: str
    # False: an execution of that name exists but has closed (Step Functions refuses the name
    # for 90 days after), so the caller must start one under another name.
    running: bool


class ExecutionGateway(Protocol):
    """The JobRunner's executions (Step Functions): start one, release a waiting task."""

    def start(self, name: str, run_input: dict[str, Any]) -> StartedExecution:
        """Start an execution named `name`; if one of that name exists, that one."""
        ...

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> bool:
        """Release the task waiting on `task_token`; False when it waits no longer."""
        ...


# -- schedules, priorities and cleanup ---------------------------------------------------------


class ScheduleStore(Protocol):
    """Recurring schedules, per tenant, written with optimistic locking on `version`."""

    def insert(self, schedule: ScheduleRecord) -> None: ...

    def get(self, tenant_id: str, schedule_id: str) -> ScheduleRecord:
        """ScheduleNotFound if missing or another tenant's."""
        ...

    def list(
        self, tenant_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[ScheduleRecord], str | None]:
        """One page, and the opaque cursor of the next (None at the end)."""
        ...

    def replace(self, schedule: ScheduleRecord) -> bool:
        """Write `schedule` if the stored one is at `schedule.version - 1`; False otherwise."""
        ...

    def delete(self, tenant_id: str, schedule_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SchedulerEntry:
    """One EventBridge Scheduler schedule targeting the launcher with `payload`."""

    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    enabled: bool = True
    start_at: datetime | None = None
    end_at: datetime | None = None
    one_time: bool = False  # an at(...) schedule deletes itself once it has run


class SchedulerGateway(Protocol):
    def put(self, entry: SchedulerEntry) -> None:
        """Create the schedule, or replace it when it exists."""
        ...

    def set_enabled(self, name: str, enabled: bool) -> None: ...

    def delete(self, name: str) -> None:
        """Remove the schedule; nothing happens when it is gone already."""
        ...


class RunSlots(Protocol):
    """A tenant's run slots: the set of jobs allowed to run at once (conditional writes)."""

    def acquire(self, tenant_id: str, job_id: str, *, limit: int) -> bool:
        """Take a slot for the job (True at once if it holds one); False when all are taken."""
        ...

    def release(self, tenant_id: str, job_id: str) -> None: ...

    def holders(self) -> dict[str, set[str]]:
        """Every tenant's slot holders (for cleanup's reconciliation)."""
        ...


class RunQueue(Protocol):
    def waiting(self, tenant_id: str, *, limit: int) -> list[str]:
        """Ids of the tenant's queued jobs: highest priority first, oldest first within one."""
        ...

    def tenants_waiting(self) -> set[str]: ...


class Lease(Protocol):
    """A named lease with an expiry, and the time of the last successful run it guarded."""

    def acquire(self, owner: str, now: datetime, *, seconds: int) -> bool: ...

    def release(self, owner: str) -> None: ...

    def last_run(self) -> datetime | None: ...

    def record_run(self, moment: datetime) -> None: ...


class Sweeper(Protocol):
    """The whole-table reads and deletes of the hourly cleanup."""

    def expired_jobs(self, now: datetime) -> list[tuple[str, str]]:
        """(tenantId, jobId) of terminal jobs past their expiry."""
        ...

    def unfinished_jobs(self) -> list[tuple[str, str]]:
        """(tenantId, jobId) of every job not ended yet: scheduled, queued, running, paused."""
        ...

    def purge_connections(self, now: datetime) -> int:
        """Delete connection items past their expiry; how many."""
        ...

    def purge_disabled_devices(self) -> int:
        """Delete devices whose push endpoint was disabled; how many."""
        ...


class ExecutionStatuses(Protocol):
    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when there is no such one."""
        ...


# -- push --------------------------------------------------------------------------------------


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
