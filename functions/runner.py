"""JobRunner task Lambdas: one handler per task state of `shared.runner.definition`.

Thin: Powertools wires logging (correlation id = jobId), tracing and metrics; each handler
parses its input into a pydantic model, calls one `JobRunner` use case and returns the next
`RunState` for the state machine's `Control` choice. Errors are raised, not caught: Step
Functions sees their type and routes them to `RecordFailure`.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.domain.push import wants_push
from shared.runner.state import RunState, TaskFailure, failure_key
from shared.runner_wiring import RunnerContext, runner_context
from shared.services.jobs import JobRef

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


class FailedTaskInput(RunState):
    failure: TaskFailure = Field(default_factory=TaskFailure)


class RecordFailureInput(BaseModel):
    """RecordFailure's Parameters: the failed state and the state entry that identifies the
    try. An execution started before the entry was added sends the bare state (no identity:
    recorded as before)."""

    state: FailedTaskInput
    execution: str = Field(min_length=1)
    entered: str = Field(min_length=1)

    @classmethod
    def parse(cls, event: dict[str, Any]) -> tuple[FailedTaskInput, str | None]:
        if "state" not in event:
            return FailedTaskInput.model_validate(event), None
        request = cls.model_validate(event)
        return request.state, failure_key(request.execution, request.entered)


class PrepareInput(RunState):
    # The state Prepare was entered with: the execution's input, or after failed tries of
    # Prepare what RecordFailure left (with the history events used so far).
    prior: RunState | None = None


class FinalizeInput(RunState):
    failure: TaskFailure | None = None  # set when reached through a Catch
    # Set when Finalize itself failed and this is FinalizeFallback (the definition's Catch).
    finalize_failure: TaskFailure | None = None


class AwaitResumeInput(RunState):
    task_token: str = Field(min_length=1)


@functools.cache
def context() -> RunnerContext:
    """Built at the first invocation of a cold start, from the environment."""
    return runner_context()


def _ref(state: RunState) -> JobRef:
    logger.set_correlation_id(state.job_id)
    return JobRef(state.tenant_id, state.job_id)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def prepare(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    request = PrepareInput.model_validate(event)
    decision = context().runner.prepare(
        _ref(request),
        execution_arn=request.execution_arn,
        generation=request.generation,
        events=request.prior.events if request.prior else 0,
    )
    return decision.to_json()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def process(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    state = RunState.model_validate(event)
    logger.set_correlation_id(state.job_id)
    decision = context().runner.process(state)
    metrics.add_metric(name="BatchesRun", unit=MetricUnit.Count, value=1)
    return decision.to_json()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def record_failure(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    request, key = RecordFailureInput.parse(event)
    _ref(request)
    decision = context().runner.record_failure(request, request.failure, key=key)
    logger.warning("batch failed", extra={"failure": request.failure.Error, "next": decision.next})
    metrics.add_metric(name="BatchFailures", unit=MetricUnit.Count, value=1)
    return decision.to_json()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def await_resume(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    request = AwaitResumeInput.model_validate(event)
    parked = context().runner.await_resume(_ref(request), request.task_token)
    return {"parked": parked}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def finalize(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    request = FinalizeInput.model_validate(event)
    runner = context().runner
    if request.finalize_failure is None:
        job = runner.finalize(
            _ref(request), request.outcome, request.error, failure=request.failure
        )
    else:
        logger.error("finalize failed", extra={"failure": request.finalize_failure.Error})
        job = runner.finalize_after_failure(
            _ref(request), request.outcome, request.error, request.finalize_failure
        )
        metrics.add_metric(name="FinalizeFailures", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="JobsFinished", unit=MetricUnit.Count, value=1)
    return {
        "tenantId": job.tenant_id,
        "jobId": job.job_id,
        "status": job.status.value,
        # Read by the definition's PushDecision and PushGrace states (docs/architecture.md, Push).
        "push": wants_push(job),
        "graceSeconds": context().push_grace_seconds,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def notify(event: dict[str, Any], _context: LambdaContext) -> dict[str, object]:
    """Push a finished job to its owner's devices unless a live client saw it end."""
    request = RunState.model_validate(event)
    notifier = context().notifier
    if notifier is None:
        raise RuntimeError("push is not configured for this runner (no devices table)")
    attempts = notifier.notify(_ref(request))
    outcomes = Counter(attempt.outcome.value for attempt in attempts)
    for outcome, count in outcomes.items():
        name = "Push" + "".join(part.capitalize() for part in outcome.split("_"))
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)  # PushSent, ...
    # Device ids and outcomes only: tokens never reach a log (they are not even known here).
    logger.info(
        "push attempts",
        extra={
            "attempts": [
                {
                    "deviceId": attempt.device_id,
                    "platform": attempt.platform.value,
                    "outcome": attempt.outcome.value,
                    "error": attempt.error.code if attempt.error else None,
                }
                for attempt in attempts
            ]
        },
    )
    return {"tenantId": request.tenant_id, "jobId": request.job_id, "pushes": dict(outcomes)}
