"""Races the fault suite found between a task's write and a concurrent one, pinned at the
JobRunner's level (JobService over the in-memory store, which lets a concurrent write land
between a task's read and its commit)."""

from __future__ import annotations

from datetime import timedelta

from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.models import JobError, JobRequest, JobStatus
from shared.runner.state import Outcome
from shared.services.admission import Admission
from shared.services.jobs import JobRef, JobService
from shared.services.ports import StartedExecution
from shared.services.runner import JobRunner
from tests.faults.memory import MemoryJobStore, MemoryRunQueue, MemoryRunSlots


class NoExecutions:
    """The runner's gateway where nothing else is queued: launches and releases are no-ops."""

    def start(self, name: str, run_input: dict[str, object]) -> StartedExecution:  # noqa: ARG002 - the port's signature
        return StartedExecution(f"arn:aws:states:us-east-1:1:execution:runner:{name}", True)

    def send_task_success(self, task_token: str, output: dict[str, object]) -> bool:  # noqa: ARG002 - the port's signature
        return False


def test_finalize_that_loses_to_a_cancel_ends_quietly_and_frees_the_slot() -> None:
    # Given a paused job holding its tenant's run slot, its execution failing it (AwaitResume
    # kept failing), and the user's cancel landing between Finalize's read and its write
    store, slots = MemoryJobStore(), MemoryRunSlots()
    clock = ManualClock()
    service = JobService(store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta())
    admission = Admission(service, slots, MemoryRunQueue(store), max_running=1)
    runner = JobRunner(
        service, clock=clock, executions=NoExecutions(), batch_size=2, admission=admission
    )
    job = service.create_job(
        JobRequest(type="demo", params={"items": 4}), tenant_id="t", owner_id="u"
    )
    ref = JobRef("t", job.job_id)
    assert runner.admit(ref)
    service.start(ref, total=4)
    service.pause(ref)
    service.pause_for_resume(ref, "token-1")
    store.before_commit.append(lambda: runner.cancel(ref))
    # When Finalize fails the job
    ended = runner.finalize(ref, Outcome.FAILED, JobError(code="await_failed", message="x"))
    # Then the cancel won, Finalize says so instead of failing, and the slot is free
    assert ended.status is JobStatus.CANCELLED
    assert service.get(ref).status is JobStatus.CANCELLED
    assert slots.holders() == {}
