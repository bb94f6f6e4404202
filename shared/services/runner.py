"""JobRunner use cases: what each task of the state machine does to a job (docs/architecture.md).

One method per task of `shared.runner.definition`. Each reads the job, decides, writes through
`JobService` (so every change goes through the store's optimistic transactions) and returns the
`RunState` the definition routes on, with the history events its path cost added to the
execution's estimate. Every task is safe to run twice: batches are committed on the condition
that the cursor has not moved, and terminal jobs are left alone.

Cancel, pause and resume from clients (HTTP or WebSocket alike) come through `cancel` and
`resume` here, the one place that also lets a parked execution go.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from shared import constants as c
from shared.domain.clock import Clock
from shared.domain.errors import IllegalTransition
from shared.domain.models import JobError, JobRecord, JobStatus, ProgressDelta
from shared.jobs.base import JobType, PermanentJobError, UnknownJobType, type_result
from shared.jobs.registry import JOB_TYPES, job_type
from shared.runner.state import Next, Outcome, RunState, TaskFailure, execution_name
from shared.services.admission import Admission
from shared.services.jobs import JobRef, JobService
from shared.services.ports import ExecutionGateway, StartedExecution

TIMEOUT_ERROR_CODE: Final = "timeout"
PAUSE_EXPIRED_ERROR_CODE: Final = "pause_expired"
FINALIZE_FAILED_ERROR_CODE: Final = "finalize_failed"
LAUNCH_FAILED: Final = "launch_failed"
_PERMANENT_ERROR_TYPES: Final = frozenset({PermanentJobError.__name__, UnknownJobType.__name__})
_CODED_MESSAGE: Final = re.compile(r"^([a-z][a-z0-9_]{0,63}): (.*)$", re.DOTALL)
_MAX_ERROR_MESSAGE: Final = 2048


class JobRunner:
    def __init__(
        self,
        jobs: JobService,
        *,
        clock: Clock,
        executions: ExecutionGateway | None,
        batch_size: int,
        batches_per_execution: int = c.DEFAULT_BATCHES_PER_EXECUTION,
        events_per_execution: int = c.DEFAULT_EVENTS_PER_EXECUTION,
        types: Mapping[str, JobType] = JOB_TYPES,
        admission: Admission | None = None,
    ) -> None:
        self._admission = admission  # None: no per-tenant cap, every job launches at once
        self._batches_per_execution = batches_per_execution
        self._events_per_execution = events_per_execution
        self._jobs = jobs
        self._clock = clock
        self._executions = executions
        self._batch_size = batch_size
        self._types = types

    # -- tasks ------------------------------------------------------------------------------

    def prepare(
        self,
        ref: JobRef,
        *,
        execution_arn: str | None = None,
        generation: int = 0,
        events: int = 0,
    ) -> RunState:
        """Count the items and start the job; a later execution of a started job follows it.

        `events`: what the execution used before this Prepare (failed tries of it).
        """
        job = self._jobs.get(ref)
        if job.status is JobStatus.QUEUED:
            total = job_type(job.type, self._types).prepare(job.params)
            job = self._jobs.start(ref, total=total, execution_arn=execution_arn, current=job)
        elif execution_arn is not None:
            job = self._jobs.follow_execution(ref, execution_arn, current=job)
        run = RunState(
            tenant_id=ref.tenant_id,
            job_id=ref.job_id,
            generation=generation,
            execution_arn=execution_arn,
            events=events,
        )
        decision = self._control(job) or self._after_batch(job, done=None)
        return run.carried(decision, events=_loop_events(decision))

    def process(self, run: RunState) -> RunState:
        """Honour cancel, timeout and pause; else process one batch from the cursor, once.

        The job continues in its next execution after `batches_per_execution` batches or once
        this one's history events reach `events_per_execution` (checked before every batch
        and every pause, so failed attempts and pauses count too), and a superseded execution
        (one whose job follows a newer execution) stops here.
        """
        ref = JobRef(run.tenant_id, run.job_id)
        job = self._jobs.get(ref)
        superseded = run.execution_arn is not None and job.execution_arn not in (
            None,
            run.execution_arn,
        )
        if superseded:
            return self._decided(run, self._state(job, Next.FINALIZE, Outcome.NONE))
        decision = self._control(job)
        if decision is not None and decision.next is Next.FINALIZE:
            return self._decided(run, decision)
        if run.events >= self._events_per_execution:
            return self._hand_over(ref, run, job)
        if decision is not None:  # a pause
            return self._decided(run, decision)
        cursor = run.cursor
        if job.cursor != cursor or job.cursor >= job.counters.total:
            # a duplicate: report what was committed
            return self._decided(run, self._after_batch(job, done=None))
        kind = job_type(job.type, self._types)
        outcome = kind.process(
            job.params, cursor, self._batch_size, attempt=job.failures_at(cursor) + 1
        )
        delta = ProgressDelta(
            succeeded=outcome.succeeded, failed=outcome.failed, skipped=outcome.skipped
        )
        committed = self._jobs.commit_batch(
            ref, from_cursor=cursor, to_cursor=outcome.next_cursor, delta=delta, current=job
        )
        ours = committed.cursor == outcome.next_cursor
        decided = self._after_batch(committed, done=outcome.done if ours else None)
        run = run.model_copy(update={"executed": run.executed + 1})
        if decided.next is Next.PROCESS and (
            run.executed >= self._batches_per_execution
            or run.events + _loop_events(decided) >= self._events_per_execution
        ):
            return self._hand_over(ref, run, committed)
        return self._decided(run, decided)

    def record_failure(
        self, run: RunState, failure: TaskFailure, *, key: str | None = None
    ) -> RunState:
        """Record a failed try; pick the job's backoff, or finish failed with the last error.

        `key` identifies the try (`failure_key`): when RecordFailure is retried after it
        recorded the try already, the same decision is taken again and nothing is counted twice.
        """
        ref = JobRef(run.tenant_id, run.job_id)
        # The failed task's own events; AwaitResume's were counted when the pause was decided.
        failed_task = 0 if run.next is Next.PAUSE else c.EVENTS_TASK
        decision = self._record_failure(ref, failure, key)
        return run.carried(decision, events=failed_task + _loop_events(decision))

    def _record_failure(self, ref: JobRef, failure: TaskFailure, key: str | None) -> RunState:
        job = self._jobs.get(ref)
        if job.is_terminal:
            return self._state(job, Next.FINALIZE, Outcome.NONE)
        if key is not None and job.recorded_failure == key and job.attempts:
            recorded = job.attempts[-1]  # this very try, recorded by an earlier invocation
            error, wait_ms = recorded.error, recorded.wait_ms
        else:
            error, permanent = describe_failure(failure)
            failures = job.failures_at(job.cursor)
            retry = not permanent and failures < job.retry.max_retries
            wait_ms = job.retry.backoff_ms(failures) if retry else None
            job = self._jobs.record_attempt(ref, error, wait_ms=wait_ms, key=key, current=job)
        if wait_ms is None:
            return self._state(job, Next.FINALIZE, Outcome.FAILED, error=error)
        again = Next.RETRY_PREPARE if job.status is JobStatus.QUEUED else Next.RETRY
        # Wait takes whole seconds: round up so a retry never comes earlier than the policy says.
        return self._state(job, again, wait_seconds=math.ceil(wait_ms / 1000))

    def await_resume(self, ref: JobRef, task_token: str) -> bool:
        """Park the job as paused with the token resume sends back; False if not parked.

        When the pause request is gone by now (resumed or cancelled meanwhile) nobody else will
        ever send this token, so the execution is released here and goes on at once.
        """
        job = self._jobs.pause_for_resume(ref, task_token)
        if job.status is JobStatus.PAUSED and job.task_token == task_token:
            return True
        self._release(task_token)
        return False

    def finalize(
        self,
        ref: JobRef,
        outcome: Outcome | None,
        error: JobError | None = None,
        *,
        failure: TaskFailure | None = None,
    ) -> JobRecord:
        """End the job as decided; without a decision (a Catch got here) fail with `failure`.

        A job that has ended gives its run slot back and the tenant's next waiting job starts;
        an execution superseded by the job's next one (continue-as-new) keeps it.
        """
        try:
            job = self._end(ref, outcome, error, failure)
        except IllegalTransition:
            # Another writer ended the job between our read and our write (a cancel of a
            # paused job, the hourly sweep): it ended once, so this execution is done too.
            job = self._jobs.get(ref)
            if not job.is_terminal:
                raise
        if job.is_terminal and self._admission is not None:
            self._admission.release(ref, self.launch)
        return job

    def finalize_after_failure(
        self,
        ref: JobRef,
        outcome: Outcome | None,
        error: JobError | None,
        finalize_failure: TaskFailure,
    ) -> JobRecord:
        """Finalize failed (after its retries): end the job with the fewest writes that can.

        A cancel stays a cancel and a decided failure keeps its error; anything else (a
        completion whose result could not be written, a caught task failure) fails with
        `finalize_failed` and the cause. An execution that was handing over (`none`) ends
        nothing. Its slot is given back as in `finalize`; if this fails too, the execution
        fails and the cleanup's dead-execution sweep ends the job and frees the slot.
        """
        if outcome not in (Outcome.NONE, Outcome.CANCELLED) and not (
            outcome is Outcome.FAILED and error is not None
        ):
            cause = describe_failure(finalize_failure)[0]
            message = f"the job could not be finalized ({cause.code}): {cause.message}"
            outcome = Outcome.FAILED
            error = JobError(code=FINALIZE_FAILED_ERROR_CODE, message=message[:_MAX_ERROR_MESSAGE])
        return self.finalize(ref, outcome, error)

    def _end(
        self,
        ref: JobRef,
        outcome: Outcome | None,
        error: JobError | None,
        failure: TaskFailure | None,
    ) -> JobRecord:
        if outcome is None:
            outcome = Outcome.FAILED
            if error is None and failure is not None:
                error = describe_failure(failure)[0]
        job = self._jobs.get(ref)
        if job.is_terminal or outcome is Outcome.NONE:
            return job
        if outcome is Outcome.COMPLETED:
            kind = job_type(job.type, self._types)
            counters = job.counters.model_dump(mode="json")
            result = {**type_result(kind, job.params), "counters": counters}
            return self._jobs.complete(ref, result, current=job)
        if outcome is Outcome.CANCELLED:
            return self._jobs.finish_cancelled(ref, current=job)
        reason = error or JobError(code="runner_failed", message="the job runner failed")
        return self._jobs.fail(ref, reason, current=job)

    # -- control from outside ---------------------------------------------------------------

    @property
    def jobs(self) -> JobService:
        return self._jobs

    @property
    def admission(self) -> Admission | None:
        return self._admission

    def admit(self, ref: JobRef) -> bool:
        """Launch a queued job if its tenant has a free run slot; else it waits (False).

        A runner built without executions (no state machine configured) launches nothing.
        """
        if self._executions is None:
            return False
        if self._admission is None:
            self.launch(ref)
            return True
        return self._admission.admit(ref, self.launch)

    def launch(self, ref: JobRef, generation: int = 0) -> str:
        """Start the job's execution and record its ARN on the job; the running one if any.

        A launch walks the run's names (`execution_name(job, generation, attempt)`) past the
        closed executions to the first running or free one, so launching again finds the
        running execution, a relaunch after its execution closed starts a new one, and two
        launchers at once walk the same names and meet on one execution. A job whose every
        name closed without it ever starting fails (`launch_failed`), freeing its slot.
        """
        for attempt in range(c.MAX_EXECUTION_ATTEMPTS):
            name = execution_name(ref.job_id, generation, attempt)
            started = self._start(ref, name, generation)
            if started.running:
                self._jobs.follow_execution(ref, started.arn)
                return started.arn
        message = f"{c.MAX_EXECUTION_ATTEMPTS} executions of the job closed before it started"
        self.finalize(ref, Outcome.FAILED, JobError(code=LAUNCH_FAILED, message=message))
        return started.arn

    def start_execution(self, ref: JobRef, name: str, generation: int = 0) -> str:
        """Start the JobRunner for a job under `name` (idempotent on it); its ARN."""
        return self._start(ref, name, generation).arn

    def _start(self, ref: JobRef, name: str, generation: int) -> StartedExecution:
        run_input = {"tenantId": ref.tenant_id, "jobId": ref.job_id, "generation": generation}
        return self._gateway().start(name, run_input)

    def resume(self, ref: JobRef) -> JobRecord:
        """Resume a job and, if its execution is parked, send it the token it waits for."""
        before = self._jobs.get(ref)
        token = before.task_token if before.status is JobStatus.PAUSED else None
        job = self._jobs.resume(ref)
        if token is not None and job.status is JobStatus.RUNNING:
            self._release(token)
        return job

    def cancel(self, ref: JobRef) -> JobRecord:
        """Cancel a job; a queued or paused one ends at once, gives its run slot back (a queued
        one may hold a slot whose execution never started: nothing else would free it before
        the hourly cleanup) and a parked execution is let go."""
        before = self._jobs.get(ref)
        token = before.task_token if before.status is JobStatus.PAUSED else None
        job = self._jobs.request_cancel(ref)
        if not job.is_terminal:
            return job  # a running job ends at its next batch, and Finalize frees its slot
        if token is not None:
            self._release(token)  # the execution wakes, sees the job ended, finalizes nothing
        if self._admission is not None:
            self._admission.release(ref, self.launch)  # idempotent: Finalize may release too
        return job

    # -- decisions --------------------------------------------------------------------------

    def _control(self, job: JobRecord) -> RunState | None:
        """What the control flags say before a batch; None means: go on processing."""
        if job.is_terminal:
            return self._state(job, Next.FINALIZE, Outcome.NONE)
        if job.cancel_requested:
            return self._state(job, Next.FINALIZE, Outcome.CANCELLED)
        now = self._clock.now()
        if job.timed_out(now):
            return self._state(job, Next.FINALIZE, Outcome.FAILED, error=_timeout_error(job))
        if job.pause_requested or job.status is JobStatus.PAUSED:
            seconds, error = pause_bound(job, now)
            return self._state(job, Next.PAUSE).model_copy(
                update={"pause_seconds": seconds, "pause_error": error}
            )
        return None

    def _decided(self, run: RunState, decision: RunState) -> RunState:
        """`decision` for this execution, with the events of ProcessBatch's path counted."""
        return run.carried(decision, events=_loop_events(decision))

    def _hand_over(self, ref: JobRef, run: RunState, job: JobRecord) -> RunState:
        """Continue the job in its next execution (from the job's cursor); this one ends."""
        self.launch(ref, run.generation + 1)  # idempotent: named after the generation
        return self._decided(run, self._state(job, Next.FINALIZE, Outcome.NONE))

    def _after_batch(self, job: JobRecord, *, done: bool | None) -> RunState:
        finished = job.cursor >= job.counters.total if done is None else done
        if finished:
            return self._state(job, Next.FINALIZE, Outcome.COMPLETED)
        return self._state(job, Next.PROCESS)

    def _state(
        self,
        job: JobRecord,
        next_step: Next,
        outcome: Outcome | None = None,
        *,
        error: JobError | None = None,
        wait_seconds: int | None = None,
    ) -> RunState:
        return RunState(
            tenant_id=job.tenant_id,
            job_id=job.job_id,
            cursor=job.cursor,
            next=next_step,
            outcome=outcome,
            error=error,
            wait_seconds=wait_seconds,
        )

    def _gateway(self) -> ExecutionGateway:
        if self._executions is None:
            raise RuntimeError("this runner was built without a Step Functions gateway")
        return self._executions

    def _release(self, task_token: str) -> None:
        self._gateway().send_task_success(task_token, {"resumed": True})


def pause_bound(job: JobRecord, now: datetime) -> tuple[int, JobError]:
    """How long a pause starting `now` may last, and the error it ends with if never resumed.

    The job's `maxPauseSeconds`, or less when its `timeoutSeconds` runs out first (paused time
    counts towards it). Whole seconds, rounded up and at least one: Step Functions' task
    timeouts are positive integers.
    """
    bound: float = job.max_pause_seconds
    message = f"the job stayed paused longer than its maxPauseSeconds ({job.max_pause_seconds})"
    error = JobError(code=PAUSE_EXPIRED_ERROR_CODE, message=message)
    left = job.timeout_left(now)
    if left is not None and left < bound:
        bound, error = left, _timeout_error(job)
    return max(1, math.ceil(bound)), error


def _timeout_error(job: JobRecord) -> JobError:
    message = f"the job ran longer than its timeoutSeconds ({job.timeout_seconds})"
    return JobError(code=TIMEOUT_ERROR_CODE, message=message)


def _loop_events(decision: RunState) -> int:
    """History events of a task that returns `decision`, the Control choice after it, and the
    state it routes to when that state cannot count itself (a Wait, or AwaitResume, whose
    output is discarded)."""
    events = c.EVENTS_TASK + c.EVENTS_CHOICE
    if decision.next is Next.PAUSE:
        events += c.EVENTS_CALLBACK_TASK
    elif decision.next in (Next.RETRY, Next.RETRY_PREPARE):
        events += c.EVENTS_WAIT
    return events


def describe_failure(failure: TaskFailure) -> tuple[JobError, bool]:
    """The job error a failed task stands for, and whether it is permanent.

    A Lambda failure's cause is the runtime's JSON (`errorType`, `errorMessage`); job types put
    their code in front of the message (`code: message`). Anything that is not a declared
    permanent error (Lambda timeouts, crashes, transient job errors) is worth a retry.
    """
    cause = _cause(failure.Cause)
    error_type = str(cause.get("errorType") or failure.Error)
    text = str(cause.get("errorMessage") or failure.Cause or failure.Error)
    match = _CODED_MESSAGE.match(text)
    code, message = (match.group(1), match.group(2)) if match else (_code_of(error_type), text)
    error = JobError(code=code, message=message[:_MAX_ERROR_MESSAGE])
    return error, error_type in _PERMANENT_ERROR_TYPES


def _cause(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _code_of(error_type: str) -> str:
    if error_type == "States.Timeout":
        return "task_timeout"  # the Lambda timed out; "timeout" means the job's timeoutSeconds
    # A capital starts a word unless it follows a separator: "Lambda.ServiceException" is
    # lambda_service_exception, not lambda__service_exception.
    name = error_type.replace("States.", "").replace(".", "_")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    code = re.sub(r"[^a-z0-9_]", "", snake.lower()).strip("_") or "task_failed"
    return code[:64] if code[0].isalpha() else f"e_{code}"[:64]
