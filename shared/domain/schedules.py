"""Recurring schedules: what a client asks for, and what the store keeps.

A schedule runs one job request on a `rate(...)` or `cron(...)` expression in a timezone,
optionally between `startAt` and `endAt`. It remembers the jobs it started (newest first, the
last `MAX_RECORDED_RUNS`), so `GET /schedules/{id}` shows `lastRunAt`, `nextRunAt` and recent
runs. Job ids of scheduled runs are derived from the schedule and the run's time, so a
retried invocation of the launcher finds the job the first one created instead of a second.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, Field

from shared.domain import expressions
from shared.domain.errors import InvalidExpression
from shared.domain.models import Identifier, JobRequest, TetherModel

MAX_RECORDED_RUNS: Final = 20
SCHEDULE_NAME_MAX: Final = 128


class ScheduleState(StrEnum):
    ENABLED = "enabled"
    PAUSED = "paused"


class ScheduleRequest(TetherModel):
    """A client's request to create a schedule (POST /schedules)."""

    name: str = Field(min_length=1, max_length=SCHEDULE_NAME_MAX)
    expression: str = Field(min_length=1, max_length=256, examples=["cron(0 9 ? * MON-FRI *)"])
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/Paris"])
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    job: JobRequest

    def validated(self) -> expressions.Expression:
        """The parsed expression; InvalidExpression (422) naming what AWS would refuse."""
        expression = expressions.parse(self.expression)
        if isinstance(expression, expressions.At):
            raise InvalidExpression(
                "a schedule recurs: use rate(...) or cron(...); for one run later, "
                "POST /jobs with schedule.scheduledFor"
            )
        expressions.zone(self.timezone)
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise InvalidExpression("endAt must be after startAt")
        if self.job.schedule is not None:
            raise InvalidExpression("the job of a schedule cannot carry its own schedule")
        return expression


class ScheduleRun(TetherModel):
    """One job a schedule started: when it was due and which job it is."""

    job_id: Identifier
    scheduled_for: AwareDatetime
    started_at: AwareDatetime


class ScheduleView(TetherModel):
    """A schedule as clients see it (GET /schedules/{id})."""

    schedule_id: Identifier
    tenant_id: Identifier
    owner_id: Identifier
    name: str
    expression: str
    timezone: str
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    job: JobRequest
    state: ScheduleState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    last_run_at: AwareDatetime | None = None
    next_run_at: AwareDatetime | None = None
    runs: list[ScheduleRun] = Field(default_factory=list, description="newest first")


class ScheduleRecord(ScheduleView):
    """A schedule as the store keeps it: optimistic-lock version on top of the view."""

    version: int = Field(default=1, ge=1)

    def anchor(self) -> datetime:
        """Where a rate counts from, and before which nothing runs."""
        return self.start_at or self.created_at

    def next_run(self, after: datetime) -> datetime | None:
        if self.state is ScheduleState.PAUSED:
            return None
        return expressions.next_run(
            expressions.parse(self.expression),
            after=after,
            tz=expressions.zone(self.timezone),
            anchor=self.anchor(),
            end=self.end_at,
        )

    def view(self, now: datetime) -> ScheduleView:
        """What clients see at `now`: with the next run computed from the expression."""
        data = {name: getattr(self, name) for name in ScheduleView.model_fields}
        data["next_run_at"] = self.next_run(now)
        return ScheduleView.model_validate(data)

    def with_run(self, run: ScheduleRun, now: datetime) -> ScheduleRecord | None:
        """The schedule after recording `run`; None when it is recorded already."""
        if any(known.job_id == run.job_id for known in self.runs):
            return None
        runs = sorted([run, *self.runs], key=lambda r: r.scheduled_for, reverse=True)
        last = max(filter(None, (self.last_run_at, run.scheduled_for)))
        return self.model_copy(
            update={
                "runs": runs[:MAX_RECORDED_RUNS],
                "last_run_at": last,
                "updated_at": now,
                "version": self.version + 1,
            }
        )


def run_job_id(source: str, moment: datetime) -> str:
    """A job id for the run of `source` (a schedule id, an object) due at `moment`.

    Same shape as `RandomIds.job_id` (time-ordered: epoch milliseconds first), but derived:
    the same source and moment always give the same id.
    """
    millis = int(moment.astimezone(UTC).timestamp() * 1000)
    digest = hashlib.sha256(f"{source}|{millis}".encode()).hexdigest()[:12]
    return f"j_{millis:012x}{digest}"
