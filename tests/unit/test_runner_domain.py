"""The JobRunner's pure parts: the shared definition, batch commits, attempts, error reading."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from shared import constants as c
from shared.domain import lifecycle
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.models import JobError, JobRecord, JobRequest, ProgressDelta
from shared.jobs.base import PermanentJobError, TransientJobError
from shared.jobs.demo import DemoJob
from shared.runner.definition import TASK_STEPS, job_runner_definition
from shared.runner.state import TaskFailure, execution_name
from shared.services.runner import describe_failure, pause_bound

ARNS = {step: f"arn:aws:lambda:us-east-1:1:function:{step}" for step in TASK_STEPS}


def _running(clock: ManualClock, **request: Any) -> JobRecord:
    change = lifecycle.new_job(
        JobRequest(type="demo", params={"items": 10}, **request),
        tenant_id="t",
        owner_id="u",
        now=clock.now(),
        ids=SequentialIds(),
    )
    return lifecycle.start(change.job, clock.now(), total=10, execution_arn=None).job


def test_the_definition_uses_every_task_arn_and_only_those() -> None:
    document = json.dumps(job_runner_definition(ARNS))
    for arn in ARNS.values():
        assert arn in document
    states = job_runner_definition(ARNS)["States"]
    assert states["Backoff"]["SecondsPath"] == "$.waitSeconds"
    assert states["AwaitResume"]["Resource"].endswith(".waitForTaskToken")


LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


def test_every_task_retries_lambda_service_errors_as_aws_recommends_and_catches_the_rest() -> None:
    states = job_runner_definition(ARNS)["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert set(tasks) == {
        "Prepare",
        "ProcessBatch",
        "RecordFailure",
        "AwaitResume",
        "Finalize",
        "FinalizeFallback",
        "Notify",
    }
    service_retry = {
        "ErrorEquals": LAMBDA_SERVICE_ERRORS,
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
    }
    # the bookkeeping tasks (idempotent) also retry any other failure twice before the Catch
    any_failure = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}
    for name, task in tasks.items():
        if name in {"RecordFailure", "Finalize"}:
            assert task["Retry"] == [service_retry, {**any_failure, "BackoffRate": 2.0}], name
        else:
            assert task["Retry"] == [service_retry], name
        if name == "FinalizeFallback":
            # the last resort: if it fails, the execution fails and the cleanup ends the job
            assert "Catch" not in task
            continue
        assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
    catch_targets = {
        name: [c["Next"] for c in task["Catch"]] for name, task in tasks.items() if "Catch" in task
    }
    assert catch_targets == {
        "Prepare": ["RecordFailure"],
        "ProcessBatch": ["RecordFailure"],
        "AwaitResume": ["PauseExpired", "RecordFailure"],
        "RecordFailure": ["Finalize"],
        "Finalize": ["FinalizeFallback"],
        "Notify": ["Done"],
    }


def test_a_pause_is_bounded_by_the_state_the_runner_computed() -> None:
    states = job_runner_definition(ARNS)["States"]
    assert states["AwaitResume"]["TimeoutSecondsPath"] == "$.pauseSeconds"
    assert states["AwaitResume"]["Catch"][0]["ErrorEquals"] == ["States.Timeout"]
    assert states["PauseExpired"] == {
        "Type": "Pass",
        "InputPath": "$.pauseError",
        "ResultPath": "$.error",
        "Next": "Finalize",
    }


@pytest.mark.parametrize(
    ("request_", "elapsed", "seconds", "code"),
    [
        ({}, 0, 7 * 24 * 3600, "pause_expired"),
        ({"max_pause_seconds": 600}, 10, 600, "pause_expired"),
        # timeoutSeconds counts the time before the pause (and during it)
        ({"timeout_seconds": 3600, "max_pause_seconds": 3600}, 1000, 2600, "timeout"),
        # rounded up to a whole second, at least one (Step Functions' TimeoutSecondsPath)
        ({"timeout_seconds": 100}, 99.2, 1, "timeout"),
        ({"timeout_seconds": 100}, 98.5, 2, "timeout"),
    ],
)
def test_a_pause_lasts_the_smaller_of_its_bound_and_the_timeout_left(
    request_: dict[str, Any], elapsed: float, seconds: int, code: str
) -> None:
    clock = ManualClock()
    job = _running(clock, **request_)
    clock.advance(seconds=elapsed)
    bound, error = pause_bound(job, clock.now())
    assert (bound, error.code) == (seconds, code)


def test_a_paused_job_parked_again_keeps_the_newest_token() -> None:
    # Given a paused job parked on token "t1"
    clock = ManualClock()
    job = lifecycle.request_pause(_running(clock), clock.now())
    assert job is not None
    parked = lifecycle.pause_for_resume(job.job, clock.now(), task_token="t1")
    assert parked is not None
    # When the same token comes again, nothing changes; a new one (a retried AwaitResume) wins
    assert lifecycle.pause_for_resume(parked.job, clock.now(), task_token="t1") is None
    again = lifecycle.pause_for_resume(parked.job, clock.now(), task_token="t2")
    assert again is not None
    assert (again.job.status.value, again.job.task_token, again.messages) == ("paused", "t2", ())


def test_the_definition_refuses_a_missing_arn() -> None:
    with pytest.raises(ValueError, match="finalize"):
        job_runner_definition({k: v for k, v in ARNS.items() if k != "finalize"})


def test_a_batch_commits_once_per_cursor() -> None:
    clock = ManualClock()
    job = _running(clock)
    change = lifecycle.commit_batch(
        job,
        from_cursor=0,
        to_cursor=5,
        delta=ProgressDelta(succeeded=5),
        now=clock.now(),
        min_interval=timedelta(0),
    )
    assert change is not None
    assert (change.job.cursor, change.job.counters.processed) == (5, 5)
    again = lifecycle.commit_batch(
        change.job,
        from_cursor=0,
        to_cursor=5,
        delta=ProgressDelta(succeeded=5),
        now=clock.now(),
        min_interval=timedelta(0),
    )
    assert again is None


def test_attempts_are_numbered_per_cursor() -> None:
    clock = ManualClock()
    job = _running(clock)
    error = JobError(code="x", message="y")
    job = lifecycle.record_attempt(job, clock.now(), error=error, wait_ms=1000).job
    job = lifecycle.record_attempt(job, clock.now(), error=error, wait_ms=None).job
    assert [(a.attempt, a.wait_ms) for a in job.attempts] == [(1, 1000), (2, None)]
    assert job.failures_at(0) == 2
    assert job.failures_at(5) == 0


def test_failures_are_read_from_lambdas_error_json() -> None:
    cause = json.dumps({"errorType": "PermanentJobError", "errorMessage": "bad_row: row 3"})
    error, permanent = describe_failure(TaskFailure(Error="PermanentJobError", Cause=cause))
    assert (error.code, error.message, permanent) == ("bad_row", "row 3", True)
    error, permanent = describe_failure(TaskFailure(Error="States.Timeout", Cause=None))
    assert (error.code, permanent) == ("task_timeout", False)


def test_demo_fails_an_item_as_often_as_it_is_listed() -> None:
    demo = DemoJob(sleep=lambda _s: None)
    params = {"items": 10, "transientFailures": [3, 3], "permanentFailures": [8]}
    for attempt in (1, 2):
        with pytest.raises(TransientJobError):
            demo.process(params, 0, 5, attempt=attempt)
    assert demo.process(params, 0, 5, attempt=3).next_cursor == 5
    with pytest.raises(PermanentJobError):
        demo.process(params, 5, 5)


def test_execution_names_per_attempt_are_distinct_valid_and_at_most_80_characters() -> None:
    # Given a job id as long as ids get, with characters Step Functions refuses in names
    job_id = "j_" + "x" * 100 + ":y"
    # When naming every attempt of two generations
    names = [
        execution_name(job_id, generation, attempt)
        for generation in (0, 12)
        for attempt in range(c.MAX_EXECUTION_ATTEMPTS)
    ]
    # Then every name is distinct, valid and within the limit; the first keeps the plain form
    assert len(set(names)) == len(names)
    assert all(len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in names)
    assert names[0].endswith("-g0")
    assert names[1].endswith("-g0-r1")
    assert execution_name("j1", 0, 0) == "j1-g0"
