"""The hourly cleanup (DESIGN §8): purge what expired, fail what died, free what leaked.

Invoked by an EventBridge rule `rate(1 hour)` (locally by the ticker). It

* purges terminal jobs past their expiry with their whole message log (DynamoDB's TTL would
  take the job days late and leave its messages), stale connection items and devices whose
  push endpoint was disabled;
* marks failed the running or paused jobs whose execution has ended (a crashed or stopped
  execution never reached Finalize), which also gives their run slot back;
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
from shared.domain.models import JobError
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
        failed = self._fail_dead_executions(unreadable)
        reconciled = (
            self._runner.admission.reconcile(self._runner.launch)
            if self._runner.admission is not None
            else None
        )
        return CleanupReport(
            ran=True,
            purged_jobs=purged,
            purged_connections=self._sweeper.purge_connections(now),
            purged_devices=self._sweeper.purge_disabled_devices(),
            failed_jobs=failed,
            released_slots=reconciled.released if reconciled else [],
            relaunched_jobs=reconciled.relaunched if reconciled else [],
            started_jobs=reconciled.started if reconciled else [],
            unreadable_jobs=unreadable,
        )

    def _fail_dead_executions(self, unreadable: list[str]) -> list[str]:
        if self._executions is None:
            return []
        failed: list[str] = []
        for tenant_id, job_id in self._sweeper.unfinished_jobs():
            ref = JobRef(tenant_id, job_id)
            try:
                job = self._jobs.get(ref)
            except JobNotFound:
                continue
            except UnreadableJob:
                unreadable.append(f"{tenant_id}#{job_id}")
                continue
            if job.is_terminal or job.execution_arn is None:
                continue
            status = self._executions.status(job.execution_arn)
            if status == "RUNNING":
                continue
            error = JobError(
                code=EXECUTION_ENDED,
                message=f"the job's execution ended ({status or 'missing'}) before the job did",
            )
            try:
                # Reads the job again: one that just finished by itself is left alone.
                self._runner.finalize(ref, None, error)
            except (IllegalTransition, StaleJob):
                continue
            failed.append(job_id)
        return failed
