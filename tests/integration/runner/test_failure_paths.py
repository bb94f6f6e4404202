"""Every job reaches a terminal state, on moto's real Step Functions interpreter: a cancel over
WebSocket, a pause nobody resumes, a Finalize that fails, a run of failed batches long enough to
exhaust Standard's history. Each test checks the end: the job's status, counters and error, its
run slot given back (and the tenant's next job started), no execution left running."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.local import stepfunctions as local_sfn
from shared import constants as c
from shared.adapters.stepfunctions import StepFunctionsExecutions
from shared.domain.auth import Principal, Scope
from shared.domain.models import JobRecord, JobStatus, RetryPolicy
from shared.runner.state import execution_name
from shared.schedule_wiring import cleanup
from shared.services.jobs import JobRef
from shared.services.ports import PostOutcome
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import websocket_context
from tests.integration.runner.harness import BATCH_SIZE, TENANT, Stack, lambda_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Finalize retries any failure twice before its Catch (the definition's bookkeeping retry).
FINALIZE_RETRIES = 2
# One run slot for the tenant: a second job waits until the first one's slot is given back.
ONE_SLOT = pytest.mark.parametrize("max_running", [1])


def _settings(stack: Stack, table_names: dict[str, str]) -> TetherSettings:
    """The handlers' settings for this stack, as the CDK app and the local stack set them."""
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment[c.ENV_CURSOR_SECRET] = "cursor-secret-for-tests-0123456789"
    environment[c.ENV_STATE_MACHINE_ARN] = stack.state_machine_arn
    return TetherSettings.model_validate(environment)


def _pause_after_first_batch(stack: Stack, ref: JobRef, *, seconds_later: int = 0) -> None:
    """Once the job's first batch ran and `seconds_later` passed, pause it."""

    def pause(event: dict[str, Any], _answer: Any) -> None:
        if event["jobId"] == ref.job_id and event["cursor"] == 0:
            stack.clock.advance(seconds=seconds_later)
            stack.service.pause(ref)

    stack.after_batch.append(pause)


class _NoPosts:
    """The session's replies are returned, not posted, here."""

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        raise AssertionError(f"nothing is posted in these tests ({connection_id}: {data!r})")


def _assert_ended(stack: Stack, ref: JobRef, status: JobStatus, processed: int) -> JobRecord:
    """The job's execution ended, and the job as said; its log is gap-free, it holds no slot."""
    arn = stack.service.get(ref).execution_arn
    assert arn is not None
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is status
    assert job.counters.processed == job.counters.succeeded == processed
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))
    assert ref.job_id not in stack.slot_holders()
    return job


def _assert_next_job_ran(stack: Stack, waiting: JobRef) -> None:
    """The tenant's waiting job got the freed slot and ran to its end; nothing runs now."""
    done = stack.wait_for_job(waiting, JobStatus.COMPLETED)
    assert done.counters.succeeded == done.counters.total
    assert done.execution_arn is not None
    assert stack.wait(done.execution_arn)["status"] == "SUCCEEDED"
    assert stack.slot_holders() == set()
    assert stack.running_executions() == []


# -- item 1: one cancel path, whatever the transport --------------------------------------------


@ONE_SLOT
def test_cancel_over_websocket_lets_a_paused_jobs_execution_go_and_frees_its_slot(
    stack: Stack, dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    # Given a paused job holding the tenant's only slot, and a job waiting for it
    paused, waiting = stack.create({"items": 300}), stack.create({"items": 200})
    _pause_after_first_batch(stack, paused)
    assert (stack.runner.admit(paused), stack.runner.admit(waiting)) == (True, False)
    assert stack.wait_for_job(paused, JobStatus.PAUSED).task_token
    # And the WebSocket handler's session, wired as the Lambda wires it
    session, _poster = websocket_context(
        _settings(stack, table_names), client=dynamodb, clock=stack.clock, poster=_NoPosts()
    )
    owner = Principal(tenant_id=TENANT, subject="u1", scopes=frozenset(Scope))
    session.connect("conn-1", owner)

    # When the owner cancels it over the socket
    frames = session.receive("conn-1", json.dumps({"action": "cancel", "jobId": paused.job_id}))

    # Then it is cancelled, its parked execution went on and ended, its slot is free
    assert frames == []
    _assert_ended(stack, paused, JobStatus.CANCELLED, processed=BATCH_SIZE)
    # And the waiting job took the slot and ran
    _assert_next_job_ran(stack, waiting)


# -- item 2: a pause is bounded -----------------------------------------------------------------


@ONE_SLOT
@pytest.mark.parametrize(
    ("request_", "paused_after", "bound", "code"),
    [
        # its own maxPauseSeconds, far below its timeout
        ({"max_pause_seconds": 3600}, 0, 3600, "pause_expired"),
        # the default maximum pause (7 days), no timeout
        ({}, 0, 7 * 24 * 3600, "pause_expired"),
        # timeoutSeconds runs out first: 200 s of its 600 were spent before the pause
        ({"timeout_seconds": 600}, 200, 400, "timeout"),
    ],
)
def test_a_pause_nobody_resumes_ends_the_job_and_frees_its_slot(
    stack: Stack, request_: dict[str, Any], paused_after: int, bound: int, code: str
) -> None:
    # Given a job paused after its first batch, and a job waiting for the only slot
    ref, waiting = stack.create({"items": 300}, **request_), stack.create({"items": 100})
    _pause_after_first_batch(stack, ref, seconds_later=paused_after)
    assert (stack.runner.admit(ref), stack.runner.admit(waiting)) == (True, False)
    stack.wait_for_job(ref, JobStatus.PAUSED)

    # When nobody resumes it for as long as its pause may last (AwaitResume's timeout fires;
    # the clock stays: the bound and its error were decided when the job paused)
    assert local_sfn.expire_task_timeouts() == 1

    # Then AwaitResume's timeout was that bound, and the job failed with the matching code
    assert local_sfn.requested_task_timeouts() == [bound]
    job = _assert_ended(stack, ref, JobStatus.FAILED, processed=BATCH_SIZE)
    assert job.error is not None
    assert job.error.code == code
    entered = stack.states_entered(job.execution_arn or "")
    expired = entered.index("PauseExpired")
    assert entered[expired - 1 : expired + 2] == ["AwaitResume", "PauseExpired", "Finalize"]
    _assert_next_job_ran(stack, waiting)


# -- item 3: Lambda service errors are retried, every task failure ends the job ------------------


@ONE_SLOT
def test_finalize_retries_a_lambda_client_execution_timeout(stack: Stack) -> None:
    # Given the Lambda service times Finalize's invocation out once
    stack.faults["finalize"] = [lambda_error("Lambda.ClientExecutionTimeoutException")]
    ref, waiting = stack.create({"items": 200}), stack.create({"items": 100})
    assert (stack.runner.admit(ref), stack.runner.admit(waiting)) == (True, False)

    # When the job runs, Step Functions retries Finalize after AWS's 2 s, and it completes
    job = stack.wait_for_job(ref, JobStatus.COMPLETED)
    assert local_sfn.requested_retries() == [2]
    assert job.counters.succeeded == 200
    _assert_ended(stack, ref, JobStatus.COMPLETED, processed=200)
    _assert_next_job_ran(stack, waiting)


def test_a_retried_await_resume_parks_the_job_on_the_new_token(stack: Stack) -> None:
    # Given AwaitResume's invocation times out on the client side after the function parked
    # the job, so Step Functions retries the task with a new token
    stack.faults_after["await_resume"] = [lambda_error("Lambda.ClientExecutionTimeoutException")]
    ref = stack.create({"items": 300})
    _pause_after_first_batch(stack, ref)
    arn = stack.runner.start_execution(ref, execution_name(ref.job_id))

    # When the job is paused
    (waiting_on,) = local_sfn.parked_task_tokens()

    # Then the job holds the token of the retried task the execution waits on (not the first
    # one's, nor a loop of parking and releasing), and resume lets the execution go on
    assert local_sfn.requested_retries() == [2]
    assert stack.service.get(ref).task_token == waiting_on
    resumed = stack.runner.resume(ref)
    assert resumed.status is JobStatus.RUNNING
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert (job.status, job.counters.succeeded) == (JobStatus.COMPLETED, 300)
    assert stack.states_entered(arn).count("AwaitResume") == 1


def test_a_finalize_that_crashes_once_is_retried_and_the_job_completes(stack: Stack) -> None:
    # Given Finalize's function times out once (not a Lambda-service error)
    stack.faults["finalize"] = [lambda_error("Sandbox.Timedout", "Task timed out after 30 s")]
    ref = stack.create({"items": 200})
    assert stack.runner.admit(ref)

    # When the job runs to its end
    job = stack.wait_for_job(ref, JobStatus.COMPLETED)

    # Then Finalize's own retry (1 s) absorbed the crash: completed, not finalize_failed
    assert local_sfn.requested_retries() == [1]
    assert job.error is None
    _assert_ended(stack, ref, JobStatus.COMPLETED, processed=200)
    assert "FinalizeFallback" not in stack.states_entered(job.execution_arn or "")


def test_a_record_failure_lost_after_it_recorded_the_try_counts_it_once(stack: Stack) -> None:
    # Given a job allowed one retry whose first batch fails once, and RecordFailure's
    # invocation lost after the function recorded that try (Step Functions sees an error)
    stack.faults_after["record_failure"] = [lambda_error("Lambda.Unknown", "lost invocation")]
    ref = stack.create({"items": 200, "transientFailures": [0]}, retry=RetryPolicy(max_retries=1))
    assert stack.runner.admit(ref)

    # When the job runs to its end
    job = stack.wait_for_job(ref, JobStatus.COMPLETED)

    # Then the retried RecordFailure found its try recorded: one attempt, the job's one retry
    # used once, and the job completed
    assert [(a.attempt, a.cursor) for a in job.attempts] == [(1, 0)]
    assert local_sfn.requested_retries()[0] == 1
    _assert_ended(stack, ref, JobStatus.COMPLETED, processed=200)


@ONE_SLOT
def test_a_failing_finalize_ends_the_job_through_its_fallback(stack: Stack) -> None:
    # Given Finalize's function times out on every try (its own retries included)
    timed_out = lambda_error("Sandbox.Timedout", "Task timed out after 30 s")
    stack.faults["finalize"] = [timed_out] * (1 + FINALIZE_RETRIES)
    ref, waiting = stack.create({"items": 200}), stack.create({"items": 100})
    assert (stack.runner.admit(ref), stack.runner.admit(waiting)) == (True, False)

    # When the job runs to its end
    job = stack.wait_for_job(ref, JobStatus.FAILED)

    # Then FinalizeFallback ended it failed with the cause, and its slot went to the next job
    assert job.error is not None
    assert job.error.code == "finalize_failed"
    assert "Task timed out after 30 s" in job.error.message
    _assert_ended(stack, ref, JobStatus.FAILED, processed=200)
    assert "FinalizeFallback" in stack.states_entered(job.execution_arn or "")
    _assert_next_job_ran(stack, waiting)


@ONE_SLOT
def test_when_the_fallback_fails_too_the_cleanup_ends_the_job_and_frees_its_slot(
    stack: Stack, dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    # Given Finalize (every try) and its fallback fail: the execution fails under a running job
    broken = lambda_error("Sandbox.Timedout", "Task timed out after 30 s")
    stack.faults["finalize"] = [broken] * (1 + FINALIZE_RETRIES + 1)
    ref, waiting = stack.create({"items": 200}), stack.create({"items": 100})
    assert (stack.runner.admit(ref), stack.runner.admit(waiting)) == (True, False)
    arn = stack.wait_for_job(ref, JobStatus.RUNNING).execution_arn or ""
    assert stack.wait(arn)["status"] == "FAILED"
    assert stack.service.get(ref).status is JobStatus.RUNNING
    assert stack.slot_holders() == {ref.job_id}

    # When the hourly cleanup runs
    sweep = cleanup(
        _settings(stack, table_names),
        client=dynamodb,
        clock=stack.clock,
        runner=stack.runner,
        executions=StepFunctionsExecutions(stack.sfn, stack.state_machine_arn),
    )
    report = sweep.run("cleanup-1")

    # Then it failed the job, gave its slot back, and the waiting job ran
    assert report.failed_jobs == [ref.job_id]
    job = stack.service.get(ref)
    assert (job.status, job.error and job.error.code) == (JobStatus.FAILED, "execution_ended")
    assert job.counters.processed == 200
    assert ref.job_id not in stack.slot_holders()
    _assert_next_job_ran(stack, waiting)


# -- item 5: hand over on history events, not on batches -----------------------------------------

EVENT_BUDGET = 70


@pytest.mark.parametrize("events_per_execution", [EVENT_BUDGET])
def test_executions_hand_over_on_history_events_when_every_batch_fails_twice(
    stack: Stack,
) -> None:
    # Given a job whose every batch fails twice before it succeeds (35 events a batch, where a
    # clean one costs 7), and a budget of EVENT_BUDGET events per execution
    items = 5 * BATCH_SIZE
    failures = [item for item in range(0, items, BATCH_SIZE) for _ in range(2)]
    policy = RetryPolicy(max_retries=2, initial_backoff_ms=0, max_backoff_ms=0)
    ref, first = stack.launch({"items": items, "transientFailures": failures}, retry=policy)

    # When it runs to its end
    job = stack.wait_for_job(ref, JobStatus.COMPLETED, timeout=60)

    # Then it took several executions, each ended, and none went past the budget by more
    # than the documented margin (the largest step plus what the estimate leaves out)
    generations = int((job.execution_arn or "").rsplit("-g", 1)[1]) + 1
    arns = [
        first.replace(execution_name(ref.job_id), execution_name(ref.job_id, generation))
        for generation in range(generations)
    ]
    assert generations >= 3
    assert [stack.wait(arn)["status"] for arn in arns] == ["SUCCEEDED"] * generations
    limit = EVENT_BUDGET + c.EVENTS_LARGEST_STEP + c.EVENTS_OUTSIDE_ESTIMATE
    for arn in arns:
        history = stack.history(arn)
        assert len(history) <= limit
        # And the estimate the execution carried is exact: the events it used up to its last
        # Control, but ExecutionStarted
        assert _last_estimate(history) == _events_to_last_control(history) - 1
    # And the job counted every item once, with exactly two failed tries per batch
    assert (job.counters.total, job.counters.succeeded, job.counters.failed) == (items, items, 0)
    assert job.counters.processed == items
    assert [(a.cursor, a.attempt) for a in job.attempts] == [
        (cursor, attempt) for cursor in range(0, items, BATCH_SIZE) for attempt in (1, 2)
    ]
    assert stack.log_seqs(ref) == list(range(1, job.seq + 1))
    assert stack.running_executions() == []


def _last_estimate(history: list[dict[str, Any]]) -> int:
    outputs = [
        json.loads(event["lambdaFunctionSucceededEventDetails"]["output"])
        for event in history
        if event["type"] == "LambdaFunctionSucceeded"
    ]
    return int([output for output in outputs if "events" in output][-1]["events"])


def _events_to_last_control(history: list[dict[str, Any]]) -> int:
    exits = [
        index
        for index, event in enumerate(history)
        if event["type"] == "ChoiceStateExited"
        and event["stateExitedEventDetails"]["name"] == "Control"
    ]
    return exits[-1] + 1
