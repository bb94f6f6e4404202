"""The v2 message envelope (docs/protocol.md): one model used by server, clients and tests.

`status` and `progress` messages are persisted in the job's log with a `seq` inside an `epoch`;
`resync`, `batch`, `subscribed`, `pong` and `error` are replies and carry no position.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AwareDatetime, Field, field_serializer

from shared.domain.models import Counters, JobError, JobStatus, TetherModel, utc_iso

ENVELOPE_VERSION: Final = 2


class MessageType(StrEnum):
    STATUS = "status"
    PROGRESS = "progress"
    RESYNC = "resync"
    BATCH = "batch"
    SUBSCRIBED = "subscribed"
    PONG = "pong"
    ERROR = "error"

    @property
    def persisted(self) -> bool:
        return self in PERSISTED_TYPES


PERSISTED_TYPES: Final = frozenset({MessageType.STATUS, MessageType.PROGRESS})


class StatusData(TetherModel):
    status: JobStatus
    cancel_requested: bool = False
    pause_requested: bool = False
    result: dict[str, Any] | None = None
    error: JobError | None = None


class ProgressData(TetherModel):
    total: int
    processed: int
    succeeded: int
    failed: int
    skipped: int
    percent: float

    @classmethod
    def of(cls, counters: Counters) -> ProgressData:
        return cls(**counters.model_dump(by_alias=False), percent=counters.percent)


class SubscribedData(TetherModel):
    job_id: str
    seq: int = Field(description="the head of the job's log")
    epoch: str
    recovered: bool
    replayed: int


class ErrorData(TetherModel):
    code: str
    message: str


class Envelope(TetherModel):
    """One server → client message."""

    v: Literal[2] = ENVELOPE_VERSION
    type: MessageType
    job_id: str | None = None
    seq: int | None = Field(default=None, ge=1)
    epoch: str | None = None
    ts: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)

    @field_serializer("ts")
    def _ts_iso(self, ts: AwareDatetime) -> str:
        return utc_iso(ts)

    def to_json(self) -> str:
        return self.model_dump_json()

    @property
    def size_bytes(self) -> int:
        return len(self.to_json().encode())
