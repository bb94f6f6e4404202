"""Job use cases: create, run, observe, control and remove jobs, always inside one tenant.

Every use case takes the tenant from the caller (the verified token, later) and reads and
writes only under it: another tenant's job id behaves exactly like a missing one. Changes are
computed by `shared.domain.lifecycle` and committed with optimistic locking; a lost race is
retried against the record the store handed back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from shared.domain import lifecycle
from shared.domain.clock import Clock, IdFactory
from shared.domain.envelope import Envelope
from shared.domain.errors import (
    IllegalTransition,
    JobNotFound,
    MessagesExpired,
    StaleJob,
    TooMuchContention,
)
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobError, JobRecord, JobRequest, ProgressDelta, PushAttempt
from shared.services.ports import JobFilter, JobPage, JobStore

# Each conflict means another writer succeeded, so retries always make progress. A lost race
# retries at once with the record the store handed back (the common, cheap case); a writer that
# keeps losing backs off with jitter and reads again; the bound stops a pathological hot spot.
MAX_COMMIT_ATTEMPTS: Final = 100
MAX_PAGE_SIZE: Final = 100
MAX_REPLAY_MESSAGES: Final = 5000
CONFLICT_BACKOFF_BASE_S: Final = 0.002
FIRST_BACKOFF_ATTEMPT: Final = 8
CONFLICT_BACKOFF_CAP_S: Final = 0.1

Mutation = Callable[[JobRecord], JobChange | None]


@dataclass(frozen=True, slots=True)
class LogRead:
    """A slice of a job's log, with the log's head and generation when it was read."""

    messages: list[Envelope]
    has_more: bool
    seq: int
    epoch: str

    @property
    def last_seq(self) -> int | None:
        return self.messages[-1].seq if self.messages else None


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job as named by a caller: always with the tenant the caller is acting for."""

    tenant_id: str
    job_id: str


class JobService:
    def __init__(
        self,
        store: JobStore,
        *,
        clock: Clock,
        ids: IdFactory,
        progress_min_interval: timedelta,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sleep = sleep
        self._store = store
        self._clock = clock
        self._ids = ids
        self._progress_min_interval = progress_min_interval

    # -- creating and reading ---------------------------------------------------------------

    def create_job(
        self, request: JobRequest, *, tenant_id: str, owner_id: str, job_id: str | None = None
    ) -> JobRecord:
        """A new job; with a derived `job_id`, JobAlreadyExists when it was created before."""
        change = lifecycle.new_job(
            request,
            tenant_id=tenant_id,
            owner_id=owner_id,
            now=self._clock.now(),
            ids=self._ids,
            job_id=job_id,
        )
        self._store.insert(change)
        return change.job

    def get(self, ref: JobRef) -> JobRecord:
        return self._store.get(ref.tenant_id, ref.job_id)

    def list(
        self, tenant_id: str, job_filter: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        bounded = max(1, min(limit, MAX_PAGE_SIZE))
        return self._store.list_jobs(tenant_id, job_filter, limit=bounded, cursor=cursor)

    def messages_after(
        self, ref: JobRef, after: int, *, limit: int = 100, epoch: str | None = None
    ) -> LogRead:
        """One page of the log after `after`, or MessagesExpired when it cannot fill the gap."""
        return self._read_log(ref, after, max(1, min(limit, MAX_PAGE_SIZE)), epoch)[1]

    def replay(self, ref: JobRef, after: int, *, epoch: str | None = None) -> LogRead:
        """Everything after `after` for a reconnecting client, in as few reads as DynamoDB allows.

        A client further behind than MAX_REPLAY_MESSAGES is better served by a resync than by
        a replay of the whole log, so that counts as MessagesExpired too.
        """
        job, log = self._read_log(ref, after, MAX_REPLAY_MESSAGES, epoch)
        if log.has_more:
            raise MessagesExpired(ref.job_id, after, after + 1, job.state().model_dump(mode="json"))
        return log

    def _read_log(
        self, ref: JobRef, after: int, limit: int, epoch: str | None
    ) -> tuple[JobRecord, LogRead]:
        job = self.get(ref)
        snapshot = job.state().model_dump(mode="json")
        if epoch is not None and epoch != job.epoch:
            raise MessagesExpired(ref.job_id, after, None, snapshot)
        if after >= job.seq:
            return job, LogRead(messages=[], has_more=False, seq=job.seq, epoch=job.epoch)
        page = self._store.read_messages(
            ref.tenant_id, ref.job_id, after=max(after, 0), limit=limit, now=self._clock.now()
        )
        first = page.messages[0].seq if page.messages else None
        if first != max(after, 0) + 1:
            raise MessagesExpired(ref.job_id, after, first, snapshot)
        return job, LogRead(
            messages=page.messages, has_more=page.has_more, seq=job.seq, epoch=job.epoch
        )

    # -- running (called by the JobRunner) --------------------------------------------------

    def start(
        self,
        ref: JobRef,
        *,
        total: int,
        execution_arn: str | None = None,
        current: JobRecord | None = None,
    ) -> JobRecord:
        return self._mutate(
            ref,
            lambda job: lifecycle.start(
                job, self._clock.now(), total=total, execution_arn=execution_arn
            ),
            current,
        )

    def enqueue(self, ref: JobRef) -> JobRecord:
        """A scheduled job is due: `scheduled` → `queued` (no change once it has moved on)."""
        return self._mutate(ref, lambda job: lifecycle.enqueue(job, self._clock.now()))

    def report_progress(
        self, ref: JobRef, delta: ProgressDelta, *, current: JobRecord | None = None
    ) -> JobRecord:
        return self._mutate(
            ref,
            lambda job: lifecycle.report_progress(
                job, delta, self._clock.now(), min_interval=self._progress_min_interval
            ),
            current,
        )

    def flush_progress(self, ref: JobRef, *, current: JobRecord | None = None) -> JobRecord:
        return self._mutate(
            ref, lambda job: lifecycle.flush_progress(job, self._clock.now()), current
        )

    def complete(
        self, ref: JobRef, result: dict[str, Any] | None = None, *, current: JobRecord | None = None
    ) -> JobRecord:
        return self._mutate(
            ref, lambda job: lifecycle.complete(job, self._clock.now(), result=result), current
        )

    def fail(self, ref: JobRef, error: JobError, *, current: JobRecord | None = None) -> JobRecord:
        return self._mutate(
            ref, lambda job: lifecycle.fail(job, self._clock.now(), error=error), current
        )

    def finish_cancelled(self, ref: JobRef, *, current: JobRecord | None = None) -> JobRecord:
        return self._mutate(
            ref, lambda job: lifecycle.finish_cancelled(job, self._clock.now()), current
        )

    def mark_paused(self, ref: JobRef, *, current: JobRecord | None = None) -> JobRecord:
        return self._mutate(ref, lambda job: lifecycle.mark_paused(job, self._clock.now()), current)

    def commit_batch(
        self,
        ref: JobRef,
        *,
        from_cursor: int,
        to_cursor: int,
        delta: ProgressDelta,
        current: JobRecord | None = None,
    ) -> JobRecord:
        """Count a batch if the cursor is still `from_cursor`; else the record as it stands."""
        return self._mutate(
            ref,
            lambda job: lifecycle.commit_batch(
                job,
                from_cursor=from_cursor,
                to_cursor=to_cursor,
                delta=delta,
                now=self._clock.now(),
                min_interval=self._progress_min_interval,
            ),
            current,
        )

    def record_attempt(
        self,
        ref: JobRef,
        error: JobError,
        *,
        wait_ms: int | None,
        key: str | None = None,
        current: JobRecord | None = None,
    ) -> JobRecord:
        return self._mutate(
            ref,
            lambda job: lifecycle.record_attempt(
                job, self._clock.now(), error=error, wait_ms=wait_ms, key=key
            ),
            current,
        )

    def follow_execution(
        self, ref: JobRef, execution_arn: str, *, current: JobRecord | None = None
    ) -> JobRecord:
        return self._mutate(
            ref,
            lambda job: lifecycle.follow_execution(
                job, self._clock.now(), execution_arn=execution_arn
            ),
            current,
        )

    def pause_for_resume(
        self, ref: JobRef, task_token: str, *, current: JobRecord | None = None
    ) -> JobRecord:
        return self._mutate(
            ref,
            lambda job: lifecycle.pause_for_resume(job, self._clock.now(), task_token=task_token),
            current,
        )

    def record_pushes(
        self, ref: JobRef, pushes: Sequence[PushAttempt], *, current: JobRecord | None = None
    ) -> JobRecord:
        """Record the Notify step's attempts on a finished job (once; a repeat changes nothing)."""
        return self._mutate(
            ref,
            lambda job: lifecycle.record_pushes(job, self._clock.now(), pushes=list(pushes)),
            current,
        )

    # -- control (called by clients) --------------------------------------------------------

    def request_cancel(self, ref: JobRef) -> JobRecord:
        return self._mutate(ref, lambda job: lifecycle.request_cancel(job, self._clock.now()))

    def pause(self, ref: JobRef) -> JobRecord:
        return self._mutate(ref, lambda job: lifecycle.request_pause(job, self._clock.now()))

    def resume(self, ref: JobRef) -> JobRecord:
        return self._mutate(ref, lambda job: lifecycle.resume(job, self._clock.now()))

    def delete(self, ref: JobRef) -> None:
        job = self.get(ref)
        for _ in range(MAX_COMMIT_ATTEMPTS):
            if not job.is_terminal:
                raise IllegalTransition(job.job_id, job.status, "delete a job that has not ended")
            try:
                self._store.delete(job)
                return
            except StaleJob as stale:
                job = self._current(ref, stale)
        raise TooMuchContention(ref.job_id, MAX_COMMIT_ATTEMPTS)

    # -- the optimistic loop ----------------------------------------------------------------

    def _mutate(
        self, ref: JobRef, mutation: Mutation, current: JobRecord | None = None
    ) -> JobRecord:
        # A caller's copy saves a read, but it may be stale: it is trusted only until it
        # disagrees with the mutation; the stored record is the one that decides.
        fresh = current is None
        job = self.get(ref) if current is None else current
        if (job.tenant_id, job.job_id) != (ref.tenant_id, ref.job_id):
            raise JobNotFound(ref.job_id)
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            try:
                change = mutation(job)
            except IllegalTransition:
                if fresh:
                    raise
                job, fresh = self.get(ref), True
                continue
            if change is None:
                if fresh:
                    return job
                job, fresh = self.get(ref), True  # "nothing to do" must hold for the stored job
                continue
            try:
                self._store.commit(change)
                return change.job
            except StaleJob as stale:
                job, fresh = self._current(ref, stale), True
                if attempt >= FIRST_BACKOFF_ATTEMPT:
                    # The record the conflict handed back is old once we have slept: read again.
                    self._back_off(attempt)
                    job = self.get(ref)
        raise TooMuchContention(ref.job_id, MAX_COMMIT_ATTEMPTS)

    def _back_off(self, attempt: int) -> None:
        # Full jitter: writers that collided spread out instead of colliding again at once.
        ceiling = min(
            CONFLICT_BACKOFF_CAP_S, CONFLICT_BACKOFF_BASE_S * 2 ** (attempt - FIRST_BACKOFF_ATTEMPT)
        )
        self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not security

    def _current(self, ref: JobRef, stale: StaleJob) -> JobRecord:
        if stale.current is None:
            raise JobNotFound(ref.job_id) from stale
        return stale.current
