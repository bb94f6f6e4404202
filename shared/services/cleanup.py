"""The hourly cleanup: purge what expired, fail what died, free what leaked.

Invoked by an EventBridge rule `rate(1 hour)` (locally by the ticker). It

* purges terminal jobs past their expiry with their whole message log (DynamoDB's TTL would
  take the job days late and leave its messages), stale connection items and devices whose
  push endpoint was disabled;
* marks failed the running or paused jobs whose execution has ended (a crashed or stopped
  execution never reached Finalize), which also gives their run slot back;
* relaunches the queued jobs whose execution closed before it started them (the relaunch takes
  the run's next execution name: a closed name stays taken for 90 days);
* starts, late, the `scheduled` jobs whose one-time schedule never launched them: once
  Scheduler's own retries are over (its retry window after `scheduledFor`), the job the user
  asked for runs rather than waiting forever; its status messages show when it really started.
  The launch is idempotent, so a launch Scheduler still delivers (or a redriven dead letter)
  finds the job already queued;
* reconciles the run slots with the jobs and starts waiting jobs on free slots, so no slot
  leaks and no job waits forever.

Rules: it runs at most once per interval however often it is invoked (the last successful run
is recorded), a recorded run in the future means the clock moved and does not block it, and two
invocations at once are safe: only the holder of a lease item (conditional write, with an
expiry so a crashed holder cannot block forever) works. Every step is idempotent, and a job
item that cannot be read (`UnreadableJob`, logged and counted by the store) is skipped and
listed in the report, never the end of the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shared import constants as c
from shared.domain.clock import Clock
from shared.domain.errors import IllegalTransition, JobNotFound, StaleJob, UnreadableJob
from shared.domain.models import JobError, JobRecord, JobStatus
from shared.services.jobs import JobRef
from shared.services.ports import ExecutionStatuses, Lease, Sweeper
from shared.services.runner import JobRunner

EXECUTION_ENDED: Final = "execution_ended"


@dataclass(frozen=True, slots=True)
class CleanupReport:
    ran: bool
    reason: str = ""  # why it did not run
    purged_jobs: int = 0
    purged_connections: int = 0
    purged_devices: int = 0
    failed_jobs: list[str] = field(default_factory=list)
    released_slots: list[str] = field(default_factory=list)
    relaunched_jobs: list[str] = field(default_factory=list)
    started_jobs: list[str] = field(default_factory=list)
    late_scheduled_jobs: list[str] = field(default_factory=list)  # overdue, enqueued now
    unreadable_jobs: list[str] = field(default_factory=list)  # skipped: "{tenantId}#{jobId}"


class Cleanup:
    def __init__(
        self,
        *,
        runner: JobRunner,
        sweeper: Sweeper,
        lease: Lease,
        executions: ExecutionStatuses | None,
        clock: Clock,
        interval: timedelta,
        slack: timedelta = timedelta(seconds=c.CLEANUP_INTERVAL_SLACK_SECONDS),
        lease_seconds: int = c.CLEANUP_LEASE_SECONDS,
    ) -> None:
        self._runner = runner
        self._jobs = runner.jobs
        self._sweeper = sweeper
        self._lease = lease
        self._executions = executions
        self._clock = clock
        self._interval = interval
        self._slack = slack
        self._lease_seconds = lease_seconds

    def run(self, owner: str) -> CleanupReport:
        """One cleanup, unless one ran less than an interval ago or another holds the lease."""
        now = self._clock.now()
        if not self._due(now):
            return CleanupReport(ran=False, reason="ran less than an interval ago")
        if not self._lease.acquire(owner, now, seconds=self._lease_seconds):
            return CleanupReport(ran=False, reason="another cleanup holds the lease")
        try:
            if not self._due(now):  # it finished while we were taking the lease
                return CleanupReport(ran=False, reason="ran less than an interval ago")
            report = self._sweep(now)
            self._lease.record_run(now)
            return report
        finally:
            self._lease.release(owner)

    def _due(self, now: datetime) -> bool:
        last = self._lease.last_run()
        if last is None or last > now:  # never ran, or the clock moved back since it did
            return True
        return now - last >= self._interval - self._slack

    def _sweep(self, now: datetime) -> CleanupReport:
        purged = 0
        unreadable: list[str] = []
        for tenant_id, job_id in self._sweeper.expired_jobs(now):
            try:
                self._jobs.delete(JobRef(tenant_id, job_id))
                purged += 1
            except (JobNotFound, IllegalTransition):
                continue  # gone already, or (never expected) not terminal: leave it
            except UnreadableJob:
                unreadable.append(f"{tenant_id}#{job_id}")  # TTL removes it in the end
        swept = self._sweep_unfinished(now, unreadable)
        reconciled = (
            self._runner.admission.reconcile(self._runner.launch)
            if self._runner.admission is not None
            else None
        )
        # Apart, never both: the sweep relaunches queued jobs with a closed execution,
        # `reconcile` slot holders that never got one.
        relaunched = swept.relaunched + (reconciled.relaunched if reconciled else [])
        return CleanupReport(
            ran=True,
            purged_jobs=purged,
            purged_connections=self._sweeper.purge_connections(now),
            purged_devices=self._sweeper.purge_disabled_devices(),
            failed_jobs=swept.failed,
            released_slots=reconciled.released if reconciled else [],
            relaunched_jobs=relaunched,
            started_jobs=reconciled.started if reconciled else [],
            late_scheduled_jobs=swept.late,
            unreadable_jobs=unreadable,
        )

    def _sweep_unfinished(self, now: datetime, unreadable: list[str]) -> _Swept:
        swept = _Swept()
        for tenant_id, job_id in self._sweeper.unfinished_jobs():
            ref = JobRef(tenant_id, job_id)
            try:
                job = self._jobs.get(ref)
            except JobNotFound:
                continue
            except UnreadableJob:
                unreadable.append(f"{tenant_id}#{job_id}")
                continue
            if job.status is JobStatus.SCHEDULED:
                if self._start_overdue(ref, job, now):
                    swept.late.append(job_id)
            else:
                self._check_execution(ref, job, swept)
        return swept

    def _check_execution(self, ref: JobRef, job: JobRecord, swept: _Swept) -> None:
        """Fail a running or paused job whose execution closed; relaunch such a queued one."""
        if self._executions is None or job.is_terminal or job.execution_arn is None:
            # Nothing to ask about: a queued job without an execution waits for a slot, or
            # holds one and `reconcile` launches it.
            return
        status = self._executions.status(job.execution_arn)
        if status == "RUNNING":
            return
        if job.status is JobStatus.QUEUED:
            # A holder keeps its slot; the launch walks past the closed execution's name.
            if self._runner.admit(ref):
                swept.relaunched.append(job.job_id)
        elif self._fail_dead(ref, status):
            swept.failed.append(job.job_id)

    def _fail_dead(self, ref: JobRef, status: str | None) -> bool:
        """Fail a running or paused job whose execution ended without ending it."""
        error = JobError(
            code=EXECUTION_ENDED,
            message=f"the job's execution ended ({status or 'missing'}) before the job did",
        )
        try:
            # Reads the job again: one that just finished by itself is left alone.
            self._runner.finalize(ref, None, error)
        except (IllegalTransition, StaleJob):
            return False
        return True

    def _start_overdue(self, ref: JobRef, job: JobRecord, now: datetime) -> bool:
        """Queue and admit a `scheduled` job whose launch never came; False if not overdue."""
        due = job.schedule.scheduled_for if job.schedule else None
        if due is None or now - due < timedelta(seconds=c.SCHEDULED_JOB_OVERDUE_SECONDS):
            return False
        if self._jobs.enqueue(ref).status is not JobStatus.QUEUED:
            return False  # cancelled, or started meanwhile
        self._runner.admit(ref)
        return True


@dataclass(slots=True)
class _Swept:
    failed: list[str] = field(default_factory=list)
    relaunched: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
