"""The job model: what a job is, field by field, with camelCase JSON names.

`JobRecord` is the full state of one job as stored and as returned by the state-sync API.
`JobRequest` is what a client may ask for when it creates a job. Both validate at the boundary,
so a bad value is rejected with the field's name before anything is written.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.domain.documents import first_problem

MAX_PARAMS_BYTES: Final = 32 * 1024  # keeps a job item far below DynamoDB's 400 KB
MAX_RESULT_BYTES: Final = 64 * 1024
MAX_TIMEOUT_SECONDS: Final = 30 * 24 * 3600
# How long a paused job may wait for resume before it ends `failed` with `pause_expired`: its
# execution is parked on a task token and its run slot is taken meanwhile, so a pause nobody
# resumes must end. A job may ask for its own bound (`maxPauseSeconds`) between the two limits:
# at least a minute (a client has time to resume), at most what `timeoutSeconds` allows.
DEFAULT_MAX_PAUSE_SECONDS: Final = 7 * 24 * 3600
MIN_PAUSE_SECONDS: Final = 60
MAX_PAUSE_SECONDS: Final = MAX_TIMEOUT_SECONDS

JobTypeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|-]+$")]


class TetherModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Sorts ascending from the most urgent: the queue index key starts with it."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


class RetryPolicy(TetherModel):
    """How a failed batch is retried; the defaults are part of the contract."""

    # Strict: a client's "3" or true is refused, not read as 3 or 1.
    max_retries: int = Field(default=3, ge=0, le=20, strict=True)
    initial_backoff_ms: int = Field(default=1000, ge=0, le=3_600_000, strict=True)
    backoff_multiplier: float = Field(default=2.0, ge=1.0, le=10.0, strict=True)
    max_backoff_ms: int = Field(default=60_000, ge=0, le=86_400_000, strict=True)

    @model_validator(mode="after")
    def _cap_not_below_start(self) -> Self:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("maxBackoffMs must be >= initialBackoffMs")
        return self

    def backoff_ms(self, attempt: int) -> int:
        """Delay before retry number `attempt` (0 for the first retry), capped."""
        raw = self.initial_backoff_ms * self.backoff_multiplier**attempt
        return int(min(raw, self.max_backoff_ms))


class Counters(TetherModel):
    total: int = Field(default=0, ge=0)
    processed: int = Field(default=0, ge=0)
    succeeded: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)

    @property
    def percent(self) -> float:
        if self.total <= 0:
            return 0.0
        return min(100.0, round(self.processed * 100 / self.total, 1))


class ProgressDelta(TetherModel):
    """What one batch adds to the counters; `processed` grows by the sum of the three."""

    succeeded: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    total: int | None = Field(default=None, ge=0, description="set when the item count changes")

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.skipped

    def apply_to(self, counters: Counters) -> Counters:
        return Counters(
            total=counters.total if self.total is None else self.total,
            processed=counters.processed + self.processed,
            succeeded=counters.succeeded + self.succeeded,
            failed=counters.failed + self.failed,
            skipped=counters.skipped + self.skipped,
        )


class JobError(TetherModel):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=2048)


MAX_RECORDED_ATTEMPTS: Final = 50  # newest kept; more than any maxRetries + 1 at one cursor


class Attempt(TetherModel):
    """One failed try of a batch: what failed, and how long the runner waits."""

    attempt: int = Field(ge=1, description="1 for the first try of the batch at this cursor")
    cursor: int = Field(ge=0, description="items done when the failed batch started")
    error: JobError
    wait_ms: int | None = Field(default=None, ge=0, description="backoff before the next try")
    at: AwareDatetime


class PushPolicy(StrEnum):
    """When a finished job pushes to its owner's devices (docs/architecture.md, Push)."""

    IF_NOT_SEEN = "if_not_seen"  # only if no client of the owner acked the end live
    ALWAYS = "always"
    NEVER = "never"


class Platform(StrEnum):
    """A push platform: one SNS platform application each."""

    IOS = "ios"
    IOS_SANDBOX = "ios_sandbox"
    ANDROID = "android"


class PushOutcome(StrEnum):
    SENT = "sent"
    SKIPPED_SEEN = "skipped_seen"
    SKIPPED_DISABLED = "skipped_disabled"
    ERROR = "error"


MAX_RECORDED_PUSHES: Final = 50  # per job; newest kept (a user with more devices is odd)


class PushAttempt(TetherModel):
    """One device's push for a finished job: what happened, never the token."""

    device_id: Identifier
    platform: Platform
    outcome: PushOutcome
    at: AwareDatetime
    error: JobError | None = Field(default=None, description="set for `error` and disabled")
    message_id: str | None = Field(default=None, max_length=128, description="SNS message id")


class JobSchedule(TetherModel):
    """When a job runs later (`scheduledFor`) or which recurring schedule started it."""

    scheduled_for: AwareDatetime | None = None
    schedule_id: Identifier | None = None


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


class JobRequest(TetherModel):
    """A client's request to create a job (POST /jobs)."""

    type: JobTypeName
    params: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    schedule: JobSchedule | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS, strict=True)
    max_pause_seconds: int = Field(
        default=DEFAULT_MAX_PAUSE_SECONDS,
        ge=MIN_PAUSE_SECONDS,
        le=MAX_PAUSE_SECONDS,
        strict=True,
    )
    push: PushPolicy = PushPolicy.IF_NOT_SEEN

    @field_validator("params")
    @classmethod
    def _params_fit(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Storable as they are: a write DynamoDB would refuse must not get this far."""
        problem = first_problem(params)
        if problem is not None:
            raise ValueError(f"params.{problem.where()} {problem.message}")
        size = _json_size(params)
        if size > MAX_PARAMS_BYTES:
            raise ValueError(f"params is {size} bytes serialized; the limit is {MAX_PARAMS_BYTES}")
        return params


class JobState(TetherModel):
    """The state of one job as clients see it: what state sync (GET /jobs/{id}) returns."""

    job_id: Identifier
    tenant_id: Identifier
    owner_id: Identifier
    type: JobTypeName
    params: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    status: JobStatus
    counters: Counters = Field(default_factory=Counters)
    cancel_requested: bool = False
    pause_requested: bool = False
    error: JobError | None = None
    result: dict[str, Any] | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: int | None = None
    max_pause_seconds: int = DEFAULT_MAX_PAUSE_SECONDS
    schedule: JobSchedule | None = None
    seq: int = Field(default=0, ge=0, description="seq of the last message in the job's log")
    epoch: str = Field(min_length=1, max_length=32)
    created_at: AwareDatetime
    started_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    execution_arn: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    push: PushPolicy = PushPolicy.IF_NOT_SEEN
    push_attempts: list[PushAttempt] = Field(
        default_factory=list, description="one entry per device when the job ended"
    )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def failures_at(self, cursor: int) -> int:
        """How many tries of the batch starting at `cursor` have failed so far."""
        return sum(1 for attempt in self.attempts if attempt.cursor == cursor)

    def timed_out(self, now: datetime) -> bool:
        """Past `timeoutSeconds` since the job started running (paused time counts)."""
        left = self.timeout_left(now)
        return left is not None and left <= 0

    def timeout_left(self, now: datetime) -> float | None:
        """Seconds until `timeoutSeconds` runs out (paused time counts); None without a limit."""
        if self.timeout_seconds is None or self.started_at is None:
            return None
        return self.timeout_seconds - (now - self.started_at).total_seconds()


class JobRecord(JobState):
    """A job as the store keeps it: its state plus the store's own bookkeeping."""

    # Optimistic-lock version and progress coalescing state: never shown to clients.
    version: int = Field(default=1, ge=0)
    last_progress_at: AwareDatetime | None = None
    progress_pending: bool = False
    # The runner's batch cursor (items done) and the token a paused execution waits on.
    cursor: int = Field(default=0, ge=0)
    task_token: str | None = None
    # When the Notify step ran (its attempts are in `push_attempts`): it runs once per job.
    notified_at: AwareDatetime | None = None
    # The identity of the last failed try RecordFailure recorded (`failure_key`): a retried
    # RecordFailure finds it here and does not count the try twice.
    recorded_failure: str | None = Field(default=None, max_length=64)

    def state(self) -> JobState:
        return JobState.model_validate(
            {name: getattr(self, name) for name in JobState.model_fields}
        )

    def expires_at(self, retention_seconds: int) -> int | None:
        """Epoch seconds at which a terminal job may be purged; None while it lives."""
        if self.finished_at is None:
            return None
        return int(self.finished_at.timestamp()) + retention_seconds


def utc_iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and a Z, the one timestamp format on the wire."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
