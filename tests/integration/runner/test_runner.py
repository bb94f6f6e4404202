"""Whole JobRunner executions under moto: the shared definition on moto's interpreter, every
Lambda task running the real handler in process (infra/local/stepfunctions.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from functions import runner as runner_handlers
from infra.local import stepfunctions as local_sfn
from shared import constants as c
from shared.domain.envelope import MessageType
from shared.domain.models import JobStatus, RetryPolicy
from shared.runner.state import execution_name
from shared.services.jobs import JobRef
from tests.integration.runner.harness import BATCH_SIZE, CONTEXT, PUSH_GRACE, TENANT, Stack


def test_a_thousand_item_job_completes_with_exact_counters_and_a_gap_free_log(
    stack: Stack,
) -> None:
    # Given a clock that moves a second per batch, so every batch announces its progress
    stack.after_batch.append(lambda _event, _answer: stack.clock.advance(seconds=1))
    # When a 1,000-item demo job runs
    ref, arn = stack.launch({"items": 1000})
    execution = stack.wait(arn)
    # Then it completed, counted every item once, and its log has no gap
    assert execution["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    counters = job.counters
    assert (counters.total, counters.processed, counters.succeeded) == (1000, 1000, 1000)
    assert (counters.failed, counters.skipped) == (0, 0)
    assert job.cursor == 1000
    assert job.execution_arn == arn
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))
    assert job.seq >= 10 + 3  # queued, running, a progress per batch, completed
    assert stack.batch_calls == list(range(0, 1000, BATCH_SIZE))


def test_cancel_mid_run_finishes_cancelled_after_the_batch_in_flight(stack: Stack) -> None:
    def cancel_after_second_batch(event: dict[str, Any], _answer: Any) -> None:
        if event["cursor"] == BATCH_SIZE:
            stack.service.request_cancel(JobRef(event["tenantId"], event["jobId"]))

    stack.after_batch.append(cancel_after_second_batch)
    ref, arn = stack.launch({"items": 1000})
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.CANCELLED
    assert job.counters.processed == 2 * BATCH_SIZE
    # And a cancelled job ends without a push (the user asked for the end: nothing to tell)
    assert stack.states_entered(arn)[-3:] == ["Finalize", "PushDecision", "Done"]


def test_pause_parks_the_execution_until_resume_sends_the_token(stack: Stack) -> None:
    def pause_after_first_batch(event: dict[str, Any], _answer: Any) -> None:
        if event["cursor"] == 0:
            stack.service.pause(JobRef(event["tenantId"], event["jobId"]))

    stack.after_batch.append(pause_after_first_batch)
    ref, arn = stack.launch({"items": 500})
    paused = stack.wait_for_job(ref, JobStatus.PAUSED)
    assert paused.counters.processed == BATCH_SIZE
    assert paused.task_token
    time.sleep(0.1)
    assert stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert stack.service.get(ref).counters.processed == BATCH_SIZE  # nothing ran while paused

    resumed = stack.runner.resume(ref)

    assert resumed.status is JobStatus.RUNNING
    assert resumed.task_token is None
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    assert job.counters.succeeded == 500
    assert "AwaitResume" in stack.states_entered(arn)


def test_transient_failures_are_retried_with_the_jobs_own_backoff(stack: Stack) -> None:
    # Given item 150 fails the first three tries of its batch, and a policy of its own
    policy = RetryPolicy(
        max_retries=3, initial_backoff_ms=1500, backoff_multiplier=3.0, max_backoff_ms=4000
    )
    ref, arn = stack.launch({"items": 300, "transientFailures": [150, 150, 150]}, retry=policy)
    # When it runs
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    # Then it waited 1.5 s, 4.5 s capped at 4 s, and 4 s again (whole seconds, rounded up)
    assert local_sfn.requested_waits() == [2, 4, 4, PUSH_GRACE]  # and the push grace at the end
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    assert job.counters.succeeded == 300
    assert job.counters.processed == 300  # the failed tries counted nothing
    assert [(a.attempt, a.cursor, a.wait_ms) for a in job.attempts] == [
        (1, 100, 1500),
        (2, 100, 4000),
        (3, 100, 4000),
    ]
    assert {a.error.code for a in job.attempts} == {"item_unavailable"}
    assert job.state().model_dump(mode="json")["attempts"][0]["waitMs"] == 1500


def test_exhausted_retries_fail_the_job_with_the_last_error(stack: Stack) -> None:
    policy = RetryPolicy(max_retries=1, initial_backoff_ms=0, max_backoff_ms=0)
    ref, arn = stack.launch({"items": 300, "transientFailures": [5, 5, 5]}, retry=policy)
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.message) == ("item_unavailable", "item 5 failed (try 2)")
    assert [(a.attempt, a.wait_ms) for a in job.attempts] == [(1, 0), (2, None)]
    assert local_sfn.requested_waits() == [0, PUSH_GRACE]


def test_a_permanent_failure_fails_the_job_without_retrying(stack: Stack) -> None:
    ref, arn = stack.launch({"items": 1000, "permanentFailures": [250]})
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == "item_failed"
    assert job.counters.processed == 200
    assert [(a.attempt, a.cursor, a.wait_ms) for a in job.attempts] == [(1, 200, None)]
    assert local_sfn.requested_waits() == [PUSH_GRACE]  # no backoff; the push grace only
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))


def test_bad_params_fail_the_job_at_prepare(stack: Stack) -> None:
    ref, arn = stack.launch({"items": -1})
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == "invalid_params"


def test_a_job_past_its_timeout_fails_with_code_timeout(stack: Stack) -> None:
    stack.after_batch.append(lambda _event, _answer: stack.clock.advance(seconds=31))
    ref, arn = stack.launch({"items": 1000}, timeout_seconds=60)
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == "timeout"
    assert job.counters.processed == 2 * BATCH_SIZE


def test_a_duplicated_process_batch_does_not_count_twice(stack: Stack) -> None:
    # Given every batch task is delivered twice (as an at-least-once retry would)
    def deliver_again(event: dict[str, Any], first: dict[str, Any]) -> None:
        again = runner_handlers.process(event, CONTEXT)
        assert again == first  # the committed result, not a second count

    stack.after_batch.append(deliver_again)
    ref, arn = stack.launch({"items": 450})
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    assert (job.counters.processed, job.counters.succeeded) == (450, 450)
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))
    # And a late duplicate of the first batch after the end writes nothing either
    late = runner_handlers.process({"tenantId": TENANT, "jobId": ref.job_id, "cursor": 0}, CONTEXT)
    assert late["next"] == "finalize"
    assert stack.service.get(ref).version == job.version


@pytest.mark.parametrize("batches_per_execution", [3])
def test_a_long_job_continues_in_new_executions_from_the_same_cursor(stack: Stack) -> None:
    # Given executions that hand over to the job's next one after 3 batches
    # When a 1,000-item job (10 batches) runs
    ref, first = stack.launch({"items": 1000})
    arns = [first] + [
        first.replace(execution_name(ref.job_id), execution_name(ref.job_id, generation))
        for generation in (1, 2, 3)
    ]
    stack.wait_for_job(ref, JobStatus.COMPLETED, timeout=30)
    # Then four generations ran, each in its own execution, and every one ended cleanly
    assert [stack.wait(arn)["status"] for arn in arns] == ["SUCCEEDED"] * 4
    executions = stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert sorted(e["name"] for e in executions) == sorted(a.rsplit(":", 1)[1] for a in arns)
    # And each one processed its own 3 batches (the last one the 10th), none twice
    assert [stack.states_entered(arn).count("ProcessBatch") for arn in arns] == [3, 3, 3, 1]
    assert stack.batch_calls == list(range(0, 1000, BATCH_SIZE))
    # And the job followed its executions and counted every item exactly once
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    assert job.execution_arn == arns[-1]
    assert (job.counters.processed, job.counters.succeeded, job.cursor) == (1000, 1000, 1000)
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))
    # And only the last generation finalized: one completed status in the log
    statuses = [
        m.data.get("status")
        for m in stack.service.messages_after(ref, 0, limit=100).messages
        if m.type is MessageType.STATUS
    ]
    assert statuses.count("completed") == 1


def test_a_ten_thousand_item_job_stays_within_400_state_transitions(stack: Stack) -> None:
    ref, arn = stack.launch({"items": 10_000})
    assert stack.wait(arn, timeout=60)["status"] == "SUCCEEDED"
    assert stack.service.get(ref).counters.succeeded == 10_000
    entered = stack.states_entered(arn)
    batches = 10_000 // BATCH_SIZE
    per_batch = (len(entered) - 3) / batches  # Prepare, its Control, Finalize
    events = len(stack.history(arn))
    print(
        f"\n10,000 items, batch size {BATCH_SIZE}: {len(entered)} state transitions "
        f"({per_batch:.1f} per batch) vs >= 20,000 for one state per item; "
        f"{events} history events ({events / batches:.1f} per batch; an execution hands over "
        f"after {c.DEFAULT_BATCHES_PER_EXECUTION} batches, far below the 25,000-event limit)"
    )
    assert per_batch <= 3
    assert len(entered) <= 400
    # And one execution's history stays under Standard's 25,000 events until it hands over
    assert events / batches * c.DEFAULT_BATCHES_PER_EXECUTION < 25_000
