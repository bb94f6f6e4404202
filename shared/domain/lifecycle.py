"""How a job changes: pure functions from (job, intent, now) to the next state and its messages.

Each function returns a `JobChange` (the new record, its version bumped, plus the messages
that announce the change, numbered from the job's `seq`), or None when there is nothing to
write (an idempotent repeat). The store persists a change atomically; it never decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.clock import IdFactory
from shared.domain.envelope import Envelope, MessageType, ProgressData, StatusData
from shared.domain.errors import IllegalTransition
from shared.domain.models import (
    MAX_RECORDED_ATTEMPTS,
    MAX_RECORDED_PUSHES,
    Attempt,
    Counters,
    JobError,
    JobRecord,
    JobRequest,
    JobStatus,
    ProgressDelta,
    PushAttempt,
)
from shared.domain.status import can_transition


@dataclass(frozen=True, slots=True)
class JobChange:
    job: JobRecord
    messages: tuple[Envelope, ...] = field(default_factory=tuple)

    @property
    def expected_version(self) -> int:
        """The version the stored job must still have for this change to apply."""
        return self.job.version - 1


class _Draft:
    """Accumulates the messages of one change, numbering them after the job's seq."""

    def __init__(self, job: JobRecord, now: datetime) -> None:
        self.job = job
        self.now = now
        self.messages: list[Envelope] = []

    def announce(self, kind: MessageType, data: dict[str, Any]) -> None:
        seq = self.job.seq + len(self.messages) + 1
        self.messages.append(
            Envelope(
                type=kind,
                job_id=self.job.job_id,
                seq=seq,
                epoch=self.job.epoch,
                ts=self.now,
                data=data,
            )
        )

    def announce_progress(self, counters: Counters) -> None:
        self.announce(MessageType.PROGRESS, ProgressData.of(counters).model_dump(mode="json"))

    def announce_status(self, job: JobRecord) -> None:
        data = StatusData(
            status=job.status,
            cancel_requested=job.cancel_requested,
            pause_requested=job.pause_requested,
            result=job.result if job.is_terminal else None,
            error=job.error if job.is_terminal else None,
        )
        self.announce(MessageType.STATUS, data.model_dump(mode="json", exclude_none=True))

    def finish(self, **updates: Any) -> JobChange:
        if self.messages:
            updates["seq"] = self.job.seq + len(self.messages)
        updates["version"] = self.job.version + 1
        updates["updated_at"] = self.now
        return JobChange(self.job.model_copy(update=updates), tuple(self.messages))


def new_job(
    request: JobRequest,
    *,
    tenant_id: str,
    owner_id: str,
    now: datetime,
    ids: IdFactory,
    job_id: str | None = None,
) -> JobChange:
    """A job as created: `scheduled` when it has a future `scheduledFor`, else `queued`.

    `job_id` is for launchers that derive it (a schedule's run), so a retry finds the job.
    """
    scheduled_for = request.schedule.scheduled_for if request.schedule else None
    status = (
        JobStatus.SCHEDULED
        if scheduled_for is not None and scheduled_for > now
        else JobStatus.QUEUED
    )
    job = JobRecord(
        job_id=job_id or ids.job_id(now),
        tenant_id=tenant_id,
        owner_id=owner_id,
        type=request.type,
        params=request.params,
        priority=request.priority,
        status=status,
        retry=request.retry,
        timeout_seconds=request.timeout_seconds,
        max_pause_seconds=request.max_pause_seconds,
        push=request.push,
        schedule=request.schedule,
        epoch=ids.epoch(),
        created_at=now,
        updated_at=now,
        version=0,  # finish() makes it 1: the first stored version
    )
    draft = _Draft(job, now)
    draft.announce_status(job)
    return draft.finish()


def _flush_pending_progress(draft: _Draft) -> None:
    if draft.job.progress_pending:
        draft.announce_progress(draft.job.counters)


def transition(
    job: JobRecord,
    target: JobStatus,
    now: datetime,
    *,
    action: str | None = None,
    **updates: Any,
) -> JobChange:
    """Move `job` to `target` if the graph allows it; announce pending progress, then status."""
    if not can_transition(job.status, target):
        raise IllegalTransition(job.job_id, job.status, action or f"become {target.value}")
    draft = _Draft(job, now)
    _flush_pending_progress(draft)
    changes: dict[str, Any] = {"status": target, "progress_pending": False, **updates}
    if draft.messages:
        changes["last_progress_at"] = now
    if target is JobStatus.RUNNING and job.started_at is None:
        changes["started_at"] = now
    if target.is_terminal:
        changes["finished_at"] = now
        changes["pause_requested"] = False
    if target is JobStatus.PAUSED or target is JobStatus.RUNNING:
        changes.setdefault("pause_requested", False)
    draft.announce_status(job.model_copy(update=changes))
    return draft.finish(**changes)


def enqueue(job: JobRecord, now: datetime) -> JobChange | None:
    """A scheduled job whose time has come joins the run queue; None once it has left it."""
    if job.status is not JobStatus.SCHEDULED:
        return None
    return transition(job, JobStatus.QUEUED, now, action="enqueue")


def start(job: JobRecord, now: datetime, *, total: int, execution_arn: str | None) -> JobChange:
    counters = job.counters.model_copy(update={"total": total})
    updates: dict[str, Any] = {"counters": counters}
    if execution_arn is not None:
        updates["execution_arn"] = execution_arn
    return transition(job, JobStatus.RUNNING, now, action="start", **updates)


def complete(job: JobRecord, now: datetime, *, result: dict[str, Any] | None) -> JobChange:
    return transition(job, JobStatus.COMPLETED, now, action="complete", result=result)


def fail(job: JobRecord, now: datetime, *, error: JobError) -> JobChange:
    return transition(job, JobStatus.FAILED, now, action="fail", error=error)


def finish_cancelled(job: JobRecord, now: datetime) -> JobChange:
    return transition(job, JobStatus.CANCELLED, now, action="cancel")


def mark_paused(job: JobRecord, now: datetime) -> JobChange:
    return transition(job, JobStatus.PAUSED, now, action="pause")


def pause_for_resume(job: JobRecord, now: datetime, *, task_token: str) -> JobChange | None:
    """Park a running job whose pause was requested, keeping the token resume sends back.

    None when the request is gone (resumed or cancelled meanwhile): the caller must release
    the waiting execution itself, nobody else holds its token. A paused job parked again with
    a new token (Step Functions retried AwaitResume after the function had parked it, e.g. on
    Lambda.ClientExecutionTimeoutException) keeps the new one: the execution waits on it now.
    """
    if job.status is JobStatus.PAUSED and not job.cancel_requested:
        if job.task_token == task_token:
            return None
        return _Draft(job, now).finish(task_token=task_token)
    if job.status is not JobStatus.RUNNING or not job.pause_requested or job.cancel_requested:
        return None
    return transition(job, JobStatus.PAUSED, now, action="pause", task_token=task_token)


def follow_execution(job: JobRecord, now: datetime, *, execution_arn: str) -> JobChange | None:
    """A job continued in a new execution (continue-as-new): its ARN follows, nothing else."""
    if job.is_terminal or job.execution_arn == execution_arn:
        return None
    return _Draft(job, now).finish(execution_arn=execution_arn)


def commit_batch(
    job: JobRecord,
    *,
    from_cursor: int,
    to_cursor: int,
    delta: ProgressDelta,
    now: datetime,
    min_interval: timedelta,
) -> JobChange | None:
    """Count one batch, once: None when the cursor moved on (a retried or duplicated batch)."""
    if job.cursor != from_cursor:
        return None
    if to_cursor < from_cursor:
        raise ValueError(f"a batch cannot move the cursor back ({from_cursor} -> {to_cursor})")
    change = report_progress(job, delta, now, min_interval=min_interval)
    return JobChange(change.job.model_copy(update={"cursor": to_cursor}), change.messages)


def record_attempt(
    job: JobRecord, now: datetime, *, error: JobError, wait_ms: int | None, key: str | None = None
) -> JobChange:
    """Add a failed try of the batch at the job's cursor to its visible attempt history; `key`
    (the try's identity) is kept so that a repeated RecordFailure can recognise it."""
    attempt = Attempt(
        attempt=job.failures_at(job.cursor) + 1,
        cursor=job.cursor,
        error=error,
        wait_ms=wait_ms,
        at=now,
    )
    attempts = [*job.attempts, attempt][-MAX_RECORDED_ATTEMPTS:]
    return _Draft(job, now).finish(attempts=attempts, recorded_failure=key)


def report_progress(
    job: JobRecord, delta: ProgressDelta, now: datetime, *, min_interval: timedelta
) -> JobChange:
    """Add one batch's counts; announce them unless a progress message went out too recently.

    A suppressed announcement leaves `progress_pending` set, and the next progress report past
    the interval, `flush_progress` or any status change announces the latest counters: the
    last counters are never dropped.
    """
    if job.status is not JobStatus.RUNNING:
        raise IllegalTransition(job.job_id, job.status, "report progress")
    counters = delta.apply_to(job.counters)
    draft = _Draft(job, now)
    due = job.last_progress_at is None or now - job.last_progress_at >= min_interval
    if due:
        draft.announce_progress(counters)
        return draft.finish(counters=counters, last_progress_at=now, progress_pending=False)
    return draft.finish(counters=counters, progress_pending=True)


def flush_progress(job: JobRecord, now: datetime) -> JobChange | None:
    """Announce counters a coalesced report left unannounced; None when there are none."""
    if not job.progress_pending:
        return None
    draft = _Draft(job, now)
    _flush_pending_progress(draft)
    return draft.finish(last_progress_at=now, progress_pending=False)


def request_cancel(job: JobRecord, now: datetime) -> JobChange | None:
    """Cancel now if nothing is executing; otherwise flag it for the runner's next control check."""
    if job.is_terminal and job.status is JobStatus.CANCELLED:
        return None
    if job.status is JobStatus.RUNNING:
        if job.cancel_requested:
            return None
        draft = _Draft(job, now)
        flagged = job.model_copy(update={"cancel_requested": True})
        draft.announce_status(flagged)
        return draft.finish(cancel_requested=True)
    return transition(job, JobStatus.CANCELLED, now, action="cancel", cancel_requested=True)


def request_pause(job: JobRecord, now: datetime) -> JobChange | None:
    if job.status is JobStatus.PAUSED or (job.status is JobStatus.RUNNING and job.pause_requested):
        return None
    if job.status is not JobStatus.RUNNING or job.cancel_requested:
        raise IllegalTransition(job.job_id, job.status, "pause")
    draft = _Draft(job, now)
    draft.announce_status(job.model_copy(update={"pause_requested": True}))
    return draft.finish(pause_requested=True)


def resume(job: JobRecord, now: datetime) -> JobChange | None:
    if job.status is JobStatus.PAUSED:
        return transition(
            job, JobStatus.RUNNING, now, action="resume", pause_requested=False, task_token=None
        )
    if job.status is JobStatus.RUNNING:
        if not job.pause_requested:
            return None
        draft = _Draft(job, now)
        draft.announce_status(job.model_copy(update={"pause_requested": False}))
        return draft.finish(pause_requested=False)
    raise IllegalTransition(job.job_id, job.status, "resume")


def record_pushes(job: JobRecord, now: datetime, *, pushes: list[PushAttempt]) -> JobChange | None:
    """Record what the Notify step did, once: None when it already ran for this job.

    No message: the terminal status stays the last entry of the job's log.
    """
    if job.notified_at is not None or not job.is_terminal:
        return None
    recorded = [*job.push_attempts, *pushes][-MAX_RECORDED_PUSHES:]
    return _Draft(job, now).finish(push_attempts=recorded, notified_at=now)
