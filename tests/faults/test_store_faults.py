"""Faults below the tasks, on moto's Step Functions interpreter: the job commit answered with
TransactionCanceledException or throttled, and StartExecution throttled (at launch and at a
continue-as-new hand-over). Pause, resume and cancel racing a commit are the stateful test's
`control_racing_a_commit` rule and tests/faults/test_runner_races.py. Each error is answered
under botocore's retry handler (tests/faults/injection.py, ApiFaults), as AWS would.

After each run the outage ends, the hourly cleanup runs if an execution died, and every
invariant holds.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
from botocore.exceptions import ClientError

from shared.domain.models import JobStatus
from shared.services.jobs import JobRef
from tests.faults.injection import ALWAYS, transaction_conflict
from tests.faults.world import World

# A job's commit: its item and the messages announcing the change, in one transaction.
COMMIT: Final = "DynamoDB_20120810.TransactWriteItems"
START: Final = "AWSStepFunctions.StartExecution"
THROTTLES: Final = ("ProvisionedThroughputExceededException", "ThrottlingException")


def _finish(world: World, ref: JobRef) -> dict[str, Any]:
    """The outage is over: sweep if an execution died (or never ran), settle; what happened."""
    job = world.settle(ref)
    world.api.clear()
    closed = [e["status"] for e in world.executions_of(ref)]
    if not job.is_terminal or any(status != "SUCCEEDED" for status in closed):
        world.sweep()
        job = world.settle(ref)
    return {"status": job.status, "error": job.error.code if job.error else None}


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice"])
def test_a_commit_that_loses_a_transaction_conflict_is_retried_and_counts_once(
    world: World, times: int
) -> None:
    # Given every commit of the job's, `times` times, cancelled by a concurrent transaction
    ref = world.create({"items": 4}, push="never")
    before = world.api.fired("TransactionCanceledException")
    world.api.inject(
        COMMIT,
        "TransactionCanceledException",
        needle=ref.job_id,
        times=times,
        **transaction_conflict(items=2),
    )
    # When it runs
    assert world.runner.admit(ref)
    ended = _finish(world, ref)
    # Then the conflicts happened, it completed and every invariant holds
    assert world.api.fired("TransactionCanceledException") - before == times
    assert ended == {"status": JobStatus.COMPLETED, "error": None}
    assert world.violations(ref) == []


@pytest.mark.parametrize("times", [1, 2, ALWAYS], ids=["once", "twice", "always"])
@pytest.mark.parametrize("code", THROTTLES)
def test_a_throttled_job_commit_ends_the_job_once_with_exact_counters(
    world: World, code: str, times: int
) -> None:
    # Given the job's commits throttled `times` times (always: for the whole run)
    ref = world.create({"items": 4}, push="never")
    world.api.inject(COMMIT, code, needle=ref.job_id, times=times)
    # When it runs
    assert world.runner.admit(ref)
    ended = _finish(world, ref)
    # Then botocore's retries absorb a short burst; through a throttle that never ends nothing
    # is written, the execution dies, and the hourly cleanup relaunches the job (it never
    # started) once the throttling is over: it ends, with nothing counted twice or lost
    assert world.api.fired(code) >= 1
    if times != ALWAYS:
        assert ended == {"status": JobStatus.COMPLETED, "error": None}
    assert ended["status"] in {JobStatus.COMPLETED, JobStatus.FAILED}
    assert world.violations(ref) == []


def test_start_execution_throttled_at_launch_leaves_a_queued_job_the_cleanup_starts(
    world: World,
) -> None:
    # Given StartExecution throttled for this job beyond botocore's retries
    ref = world.create({"items": 2}, push="never")
    world.api.inject(START, "ThrottlingException", needle=ref.job_id, times=ALWAYS)
    # When it is admitted, the launch fails (the launcher's invocation fails and retries)
    with pytest.raises(ClientError):
        world.runner.admit(ref)
    assert world.service.get(ref).status is JobStatus.QUEUED
    # Then once the throttling ends the cleanup relaunches it, and it completes
    assert _finish(world, ref) == {"status": JobStatus.COMPLETED, "error": None}
    assert world.violations(ref) == []


@pytest.mark.parametrize("times", [1, ALWAYS], ids=["once", "always"])
def test_start_execution_throttled_at_a_hand_over_keeps_counters_exact(
    world: World, times: int
) -> None:
    # Given a job long enough to continue in a second execution, whose next StartExecution is
    # throttled (once: botocore retries it; always: the hand-over fails for the whole run)
    ref = world.create({"items": 6}, push="never")
    world.api.inject(START, "ThrottlingException", needle=f"{ref.job_id}-g1", times=times)
    assert world.runner.admit(ref)
    # When it runs
    ended = _finish(world, ref)
    # Then every item was counted once whatever the outcome
    assert world.api.fired("ThrottlingException") >= 1
    if times == 1:
        assert ended == {"status": JobStatus.COMPLETED, "error": None}
    assert world.violations(ref) == []
