"""The launcher: the one way scheduled, periodic and triggered jobs start.

EventBridge Scheduler invokes it for a one-time job whose `scheduledFor` has come and for each
run of a recurring schedule; an EventBridge rule invokes it when an object lands under a
tenant's import prefix. Each path creates or finds the job, then hands it to the JobRunner's
admission (a run slot, or `queued` until one frees). Every path is idempotent: a job id is
derived from what triggered it (schedule and due time, object and its version), so a retried
invocation finds the job the first one created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import AwareDatetime, Field

from shared import constants as c
from shared.domain import expressions
from shared.domain.clock import Clock
from shared.domain.errors import JobAlreadyExists
from shared.domain.models import (
    Identifier,
    JobRecord,
    JobRequest,
    JobSchedule,
    JobState,
    JobStatus,
    TetherModel,
)
from shared.domain.schedules import ScheduleRecord, ScheduleRun, run_job_id
from shared.jobs.registry import JobCatalog
from shared.services.jobs import JobRef, JobService
from shared.services.ports import SchedulerEntry, ScheduleStore
from shared.services.runner import JobRunner

MAX_RECORD_ATTEMPTS: Final = 20
_TENANT_PATTERN: Final = r"^[A-Za-z0-9._:@|-]{1,128}$"


class ScheduledLaunch(TetherModel):
    """What a Scheduler schedule sends the launcher (its target input)."""

    kind: Literal["job", "schedule"]
    tenant_id: Identifier
    job_id: Identifier | None = None
    schedule_id: Identifier | None = None
    # Scheduler's `<aws.scheduler.scheduled-time>`; absent when a person says "run now".
    scheduled_time: AwareDatetime | None = None


class ImportedObject(TetherModel):
    """An S3 object created under `imports/{tenantId}/` (from the EventBridge event)."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version: str = Field(default="", max_length=1024, description="sequencer, etag or event id")
    event_time: AwareDatetime = Field(description="when S3 created it (stable across retries)")


@dataclass(frozen=True, slots=True)
class Launched:
    job: JobState
    admitted: bool  # False: waiting `queued` for a run slot (or not due yet)


def job_schedule_name(job_id: str) -> str:
    return f"job-{job_id}"


def schedule_name(schedule_id: str) -> str:
    return f"schedule-{schedule_id}"


def job_entry(job: JobRecord | JobState) -> SchedulerEntry:
    """The one-time `at(...)` schedule that starts a `scheduled` job."""
    if job.schedule is None or job.schedule.scheduled_for is None:
        raise ValueError(f"job {job.job_id} has no scheduledFor")
    when = job.schedule.scheduled_for.astimezone(UTC)
    return SchedulerEntry(
        name=job_schedule_name(job.job_id),
        expression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
        timezone="UTC",
        payload={"kind": "job", "tenantId": job.tenant_id, "jobId": job.job_id},
        one_time=True,
    )


def schedule_entry(schedule: ScheduleRecord) -> SchedulerEntry:
    """The recurring Scheduler schedule of `schedule`.

    A rate runs at `startAt` and every period after it, or, without `startAt`, one period
    after creation and every period after that: Scheduler's first rate run is at its
    StartDate, so that is where the first run Tether shows as `nextRunAt` is sent.
    """
    start_at = schedule.start_at
    expression = expressions.parse(schedule.expression)
    if start_at is None and isinstance(expression, expressions.Rate):
        start_at = schedule.created_at + timedelta(seconds=expression.seconds)
    return SchedulerEntry(
        name=schedule_name(schedule.schedule_id),
        expression=schedule.expression,
        timezone=schedule.timezone,
        payload={
            "kind": "schedule",
            "tenantId": schedule.tenant_id,
            "scheduleId": schedule.schedule_id,
        },
        enabled=schedule.state.value == "enabled",
        start_at=start_at,
        end_at=schedule.end_at,
    )


class Launcher:
    def __init__(
        self,
        runner: JobRunner,
        schedules: ScheduleStore | None,
        *,
        clock: Clock,
        catalog: JobCatalog | None = None,
    ) -> None:
        self._runner = runner
        self._jobs: JobService = runner.jobs
        self._schedules = schedules
        self._clock = clock
        # Every job the launcher creates passes the checks POST /jobs applies: a schedule
        # stored before a rule existed, or an upload event naming another bucket, is refused.
        self.catalog = catalog or JobCatalog()

    def launch(self, request: ScheduledLaunch) -> Launched:
        if request.kind == "job":
            if request.job_id is None:
                raise ValueError("a scheduled job launch names its jobId")
            return self.start_scheduled_job(JobRef(request.tenant_id, request.job_id))
        if request.schedule_id is None:
            raise ValueError("a schedule launch names its scheduleId")
        return self.run_schedule(request.tenant_id, request.schedule_id, request.scheduled_time)

    def start_scheduled_job(self, ref: JobRef) -> Launched:
        """A one-time job's time has come: `scheduled` → `queued` → a run slot."""
        job = self._jobs.enqueue(ref)
        return self._admit(job)

    def run_schedule(
        self, tenant_id: str, schedule_id: str, scheduled_time: datetime | None = None
    ) -> Launched:
        """One run of a schedule: its job request as a job, recorded on the schedule."""
        store = self._store()
        schedule = store.get(tenant_id, schedule_id)
        due = scheduled_time or self._clock.now()
        job_id = run_job_id(schedule_id, due)
        request = schedule.job.model_copy(update={"schedule": JobSchedule(schedule_id=schedule_id)})
        job = self._create_or_find(request, tenant_id, schedule.owner_id, job_id)
        self._record(
            schedule, ScheduleRun(job_id=job_id, scheduled_for=due, started_at=self._clock.now())
        )
        return self._admit(job)

    def import_object(self, obj: ImportedObject) -> Launched | None:
        """A CSV landed under `imports/{tenantId}/`: a `csv_import` job for it; None if the key
        is not under a tenant's prefix."""
        tenant_id = import_tenant(obj.key)
        if tenant_id is None:
            return None
        request = JobRequest(type="csv_import", params={"bucket": obj.bucket, "key": obj.key})
        source = f"s3://{obj.bucket}/{obj.key}#{obj.version}"
        job_id = run_job_id(source, obj.event_time)
        job = self._create_or_find(request, tenant_id, c.IMPORT_OWNER, job_id)
        return self._admit(job)

    # -- helpers ----------------------------------------------------------------------------

    def _create_or_find(
        self, request: JobRequest, tenant_id: str, owner_id: str, job_id: str
    ) -> JobRecord:
        self.catalog.check(request, tenant_id, loc=("job",))
        try:
            return self._jobs.create_job(
                request, tenant_id=tenant_id, owner_id=owner_id, job_id=job_id
            )
        except JobAlreadyExists:
            return self._jobs.get(JobRef(tenant_id, job_id))

    def _admit(self, job: JobRecord) -> Launched:
        admitted = False
        if job.status is JobStatus.QUEUED:
            admitted = self._runner.admit(JobRef(job.tenant_id, job.job_id))
        return Launched(job=job.state(), admitted=admitted)

    def _record(self, schedule: ScheduleRecord, run: ScheduleRun) -> None:
        store = self._store()
        for _ in range(MAX_RECORD_ATTEMPTS):
            updated = schedule.with_run(run, self._clock.now())
            if updated is None or store.replace(updated):
                return
            schedule = store.get(schedule.tenant_id, schedule.schedule_id)
        raise RuntimeError(f"schedule {schedule.schedule_id}: could not record run {run.job_id}")

    def _store(self) -> ScheduleStore:
        if self._schedules is None:
            raise RuntimeError("this launcher was built without a schedule store")
        return self._schedules


def import_tenant(key: str) -> str | None:
    """The tenant of an object key `imports/{tenantId}/...`; None for any other key."""
    if not key.startswith(c.IMPORTS_PREFIX):
        return None
    tenant, _, rest = key[len(c.IMPORTS_PREFIX) :].partition("/")
    if not rest or re.match(_TENANT_PATTERN, tenant) is None:
        return None
    return tenant
