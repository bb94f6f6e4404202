"""Response bodies of the schedules routes, one pydantic model each."""

from __future__ import annotations

from pydantic import Field

from shared.domain.models import JobState, TetherModel
from shared.domain.schedules import ScheduleView


class ScheduleList(TetherModel):
    schedules: list[ScheduleView]
    next_cursor: str | None = Field(default=None, description="opaque; pass back as ?cursor=")


class ScheduleRunStarted(TetherModel):
    job: JobState
    admitted: bool = Field(
        description="false: the job waits queued for one of the tenant's run slots"
    )
