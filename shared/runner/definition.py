"""The JobRunner state machine: one Standard definition, built once in Python.

CDK renders it with `DefinitionBody.from_string(json.dumps(job_runner_definition(arns)))` and
the local stack hands moto the same dict, so the two cannot drift. It is parameterised only by
the task Lambdas' ARNs.

Shape: `Prepare` → `Control` → { `ProcessBatch` → `Control` }* → `Finalize`. After
`batchesPerExecution` batches, `ProcessBatch` starts the job's next execution (generation + 1,
from the same cursor) and this one finalizes nothing: Standard executions stop at 25,000
history events, jobs do not. `ProcessBatch`
checks the job's control flags (cancel, pause, timeout) itself before it processes one batch,
and says in `next` whether to loop, pause or finish: a batch costs two state transitions
(the task and the choice) and control requests cost nothing until they are made. Branches
leave the loop only when needed: `AwaitResume` parks a paused job on `.waitForTaskToken`
until resume sends the token back; a failed task goes to `RecordFailure`, which records the
attempt on the job and picks a `Backoff` (a `Wait` with the job's own computed delay in
`$.waitSeconds`) or `Finalize` with the last error.

Every path ends the job. A pause is bounded: `AwaitResume` times out after
`$.pauseSeconds` (the job's `maxPauseSeconds`, or less when its `timeoutSeconds` runs out first,
computed by the task that decided to pause), and `PauseExpired` puts the error decided with it
(`$.pauseError`: `pause_expired` or `timeout`) where Finalize reads it. Every task retries the
Lambda service's own errors (AWS's recommended set and timing) and catches the rest: the loop's
tasks into `RecordFailure`, `RecordFailure` into Finalize, Finalize into `FinalizeFallback` (the
same function in its fail-safe mode: the least writes that end the job and free its slot).
RecordFailure and Finalize first retry any failure twice: they are idempotent, and a passing
crash there must not cost a job. If the fallback fails too the execution fails, and the hourly
cleanup's dead-execution sweep ends the job and frees its slot. The state machine has no
overall TimeoutSeconds: every wait in it is bounded already (backoffs by the retry policy,
pauses by `$.pauseSeconds`), and a timed-out execution would leave its job to that same sweep.

After `Finalize`: when it says `push` (a completed or failed job whose policy is not
`never`), `PushGrace` waits the configured grace period (`$.graceSeconds`, from Finalize, so
tests and settings choose it) for a live client to acknowledge the end, then `Notify` pushes to
the owner's devices if none did. Notify can never change how the job ended: any failure of it
is caught and the execution still succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.runner.state import Next

PREPARE: Final = "prepare"
PROCESS: Final = "process"
RECORD_FAILURE: Final = "record_failure"
AWAIT_RESUME: Final = "await_resume"
FINALIZE: Final = "finalize"
NOTIFY: Final = "notify"
TASK_STEPS: Final = (PREPARE, PROCESS, RECORD_FAILURE, AWAIT_RESUME, FINALIZE, NOTIFY)

# Errors of the Lambda service itself (not of our code) are retried by Step Functions with the
# set and timing AWS recommends for every Lambda task (2 s, doubling, 6 retries: about two
# minutes), plus throttling; our own failures go through RecordFailure instead.
_LAMBDA_SERVICE_RETRY: Final = {
    "ErrorEquals": [
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2.0,
}
# RecordFailure and Finalize are the job's bookkeeping, outside its own retry loop: a crash
# there (a handler exception, a timeout, a lost invocation) is tried twice more before the
# Catch, so a passing fault costs nothing. Both are idempotent: RecordFailure recognises a try
# it recorded already (by the state entry, which a retry does not change), and Finalize ends
# a job at most once. `States.ALL` must be the last retrier.
_BOOKKEEPING_RETRY: Final = {
    "ErrorEquals": ["States.ALL"],
    "IntervalSeconds": 1,
    "MaxAttempts": 2,
    "BackoffRate": 2.0,
}


def _catch(
    target: str, result_path: str = "$.failure", errors: str = "States.ALL"
) -> dict[str, Any]:
    return {"ErrorEquals": [errors], "ResultPath": result_path, "Next": target}


def _task(
    arn: str, *, then: str | None, catch_to: str | None, bookkeeping: bool = False
) -> dict[str, Any]:
    retry = [_LAMBDA_SERVICE_RETRY, _BOOKKEEPING_RETRY] if bookkeeping else [_LAMBDA_SERVICE_RETRY]
    state: dict[str, Any] = {"Type": "Task", "Resource": arn, "Retry": retry}
    if then is None:
        state["End"] = True
    else:
        state["Next"] = then
    if catch_to is not None:
        state["Catch"] = [_catch(catch_to)]
    return state


def _await_resume(function_arn: str) -> dict[str, Any]:
    """Park the paused job's token (the function stores it) and wait until resume sends it."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {
                "tenantId.$": "$.tenantId",
                "jobId.$": "$.jobId",
                "cursor.$": "$.cursor",
                "taskToken.$": "$$.Task.Token",
            },
        },
        "ResultPath": None,  # resume's output is not needed: the job item is the truth
        # A pause nobody resumes ends (States.Timeout): after maxPauseSeconds, or when the
        # job's timeoutSeconds runs out, whichever comes first.
        "TimeoutSecondsPath": "$.pauseSeconds",
        "Retry": [_LAMBDA_SERVICE_RETRY],
        "Catch": [
            _catch("PauseExpired", errors="States.Timeout"),
            _catch("RecordFailure"),
        ],
        "Next": "ProcessBatch",
    }


def _route(value: Next, target: str) -> dict[str, Any]:
    return {"Variable": "$.next", "StringEquals": value.value, "Next": target}


def job_runner_definition(task_arns: Mapping[str, str]) -> dict[str, Any]:
    """The ASL document; `task_arns` maps each of TASK_STEPS to its Lambda function ARN."""
    missing = [step for step in TASK_STEPS if step not in task_arns]
    if missing:
        raise ValueError(f"no Lambda ARN for task step(s): {', '.join(missing)}")
    arn = task_arns
    return {
        "Comment": "Tether JobRunner: prepare, process batches under control, finalize, notify",
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                **_task(arn[PREPARE], then="Control", catch_to="RecordFailure"),
                "Parameters": {
                    "tenantId.$": "$.tenantId",
                    "jobId.$": "$.jobId",
                    "generation.$": "$.generation",
                    "executionArn.$": "$$.Execution.Id",
                    # the history events spent before a retried Prepare, when there is one
                    "prior.$": "$",
                },
            },
            "Control": {
                "Type": "Choice",
                "Choices": [
                    _route(Next.PROCESS, "ProcessBatch"),
                    _route(Next.PAUSE, "AwaitResume"),
                    _route(Next.RETRY, "Backoff"),
                    _route(Next.RETRY_PREPARE, "BackoffPrepare"),
                ],
                "Default": "Finalize",
            },
            "ProcessBatch": _task(arn[PROCESS], then="Control", catch_to="RecordFailure"),
            "RecordFailure": {
                **_task(arn[RECORD_FAILURE], then="Control", catch_to="Finalize", bookkeeping=True),
                # The failed try's identity: this state entry (a retry of RecordFailure keeps
                # it), so a retried RecordFailure does not record the same try twice.
                "Parameters": {
                    "state.$": "$",
                    "execution.$": "$$.Execution.Id",
                    "entered.$": "$$.State.EnteredTime",
                },
            },
            "Backoff": {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "ProcessBatch"},
            "BackoffPrepare": {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "Prepare"},
            "AwaitResume": _await_resume(arn[AWAIT_RESUME]),
            "PauseExpired": {
                "Type": "Pass",
                "InputPath": "$.pauseError",
                "ResultPath": "$.error",  # Finalize, without an outcome, fails with this error
                "Next": "Finalize",
            },
            "Finalize": {
                **_task(arn[FINALIZE], then="PushDecision", catch_to=None, bookkeeping=True),
                "Catch": [_catch("FinalizeFallback", "$.finalizeFailure")],
            },
            # Finalize in its fail-safe mode (it sees `finalizeFailure`); uncaught on purpose:
            # if it fails too, the execution fails and the cleanup ends the job.
            "FinalizeFallback": _task(arn[FINALIZE], then="PushDecision", catch_to=None),
            "PushDecision": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.push", "BooleanEquals": True, "Next": "PushGrace"}],
                "Default": "Done",
            },
            "PushGrace": {"Type": "Wait", "SecondsPath": "$.graceSeconds", "Next": "Notify"},
            "Notify": {
                **_task(arn[NOTIFY], then="Done", catch_to=None),
                # The job has ended already: a push that fails is recorded or dropped, never
                # a failed execution (the job's status is the job item's, untouched here).
                "Catch": [_catch("Done", "$.notifyFailure")],
            },
            "Done": {"Type": "Succeed"},
        },
    }
