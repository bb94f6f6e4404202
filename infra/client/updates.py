"""What `TetherClient.watch` yields: typed updates, each with the client's view of the job.

A consumer (the CLI's progress bar, a test, an app) reads `update.view` for the current
counters and status, and matches on the update's class for what just happened. The last update
of a watch is final (`Finished`, `JobGone` or `GaveUp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.models import Counters, JobError, JobState, JobStatus


@dataclass(frozen=True, slots=True)
class JobView:
    """The client's picture of one job: counters never go backwards within a watch."""

    job_id: str
    status: JobStatus | None
    counters: Counters
    seq: int
    epoch: str | None
    error: JobError | None = None
    result: dict[str, Any] | None = None

    @property
    def percent(self) -> float:
        return self.counters.percent


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    view: JobView

    @property
    def final(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Subscribed(WatchUpdate):
    """The server registered the subscription; `recovered` says whether it replays or resyncs."""

    recovered: bool
    replayed: int
    head: int


@dataclass(frozen=True, slots=True)
class Progress(WatchUpdate):
    seq: int


@dataclass(frozen=True, slots=True)
class StatusChanged(WatchUpdate):
    seq: int
    status: JobStatus


@dataclass(frozen=True, slots=True)
class Resynced(WatchUpdate):
    """The log could not fill the gap; the client took the job's state over HTTP instead."""

    state: JobState


@dataclass(frozen=True, slots=True)
class Reconnecting(WatchUpdate):
    """The socket is gone; the client waits `wait` seconds, then makes try `attempt`."""

    attempt: int
    attempts: int
    wait: float
    reason: str


@dataclass(frozen=True, slots=True)
class ServerError(WatchUpdate):
    """An `error` frame that does not end the watch (e.g. a refused ack)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Finished(WatchUpdate):
    """The job reached a terminal status: `view.status` is completed, failed or cancelled."""

    @property
    def final(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class JobGone(WatchUpdate):
    """The job no longer exists (deleted, expired, or not visible to this token): 404."""

    @property
    def final(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class GaveUp(WatchUpdate):
    """The watch stopped before the job ended: reconnects exhausted or cancelled, or refused."""

    reason: str

    @property
    def final(self) -> bool:
        return True
