"""The JobRunner test harness: `Stack` (a deployed JobRunner on moto's Step Functions
interpreter, every Lambda task running the real handler in process) and its constants.

The fixtures that build it live in this folder's conftest.py, so every test module here gets
them (and moto with the interpreter switched on) without importing fixtures by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra.local import stepfunctions as local_sfn
from shared.adapters.dynamo_limits import DynamoRunSlots
from shared.adapters.stepfunctions import StepFunctionsExecutions
from shared.domain.clock import ManualClock
from shared.domain.models import JobRecord, JobRequest, JobStatus
from shared.runner.state import execution_name
from shared.services.jobs import JobRef, JobService
from shared.services.runner import JobRunner

TENANT = "acme"
BATCH_SIZE = 100
PUSH_GRACE = 7  # seconds PushGrace asks for (recorded, not slept: wait_scale 0)
ENDED = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
CONTEXT = local_sfn.LocalLambdaContext("direct", "arn:aws:lambda:us-east-1:123456789012:function:x")
Hook = Callable[[dict[str, Any], dict[str, Any]], object]
Handler = Callable[[dict[str, Any], Any], Any]


def lambda_error(error_type: str, message: str = "injected") -> Exception:
    """An exception Step Functions sees as `error_type` (the in-process Lambda reports its
    class name): how a test raises AWS's own names, e.g. Lambda.ClientExecutionTimeoutException."""
    kind: type[Exception] = type(error_type, (Exception,), {})
    return kind(message)


class LateExecutions(StepFunctionsExecutions):
    """The JobRunner's executions, for a state machine deployed after the runner is built
    (deploying needs the task handlers, and the handlers need the runner)."""

    def __init__(self, sfn: Any) -> None:
        super().__init__(sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:pending")

    def deploy(self, handlers: dict[str, Handler] | None = None) -> str:
        """Deploy the shared definition with these task handlers (default: the real ones)."""
        self._state_machine_arn = local_sfn.deploy_job_runner(
            lambda_client=boto3.client("lambda", region_name="us-east-1"),
            iam_client=boto3.client("iam", region_name="us-east-1"),
            sfn_client=self._client,
            handlers=handlers or local_sfn.runner_handlers(),
        )
        local_sfn.clear_waits()
        return self._state_machine_arn


@dataclass
class Stack:
    service: JobService
    runner: JobRunner
    sfn: Any
    clock: ManualClock
    slots: DynamoRunSlots | None = None
    # Errors a task step raises before its handler runs (or, in `faults_after`, once it ran:
    # its work is done but Step Functions sees the error), one per invocation, in order.
    faults: dict[str, list[Exception]] = field(default_factory=dict)
    faults_after: dict[str, list[Exception]] = field(default_factory=dict)
    after_batch: list[Hook] = field(default_factory=list)
    batch_calls: list[int] = field(default_factory=list)
    state_machine_arn: str = ""

    def launch(
        self, params: dict[str, Any], *, kind: str = "demo", **request: Any
    ) -> tuple[JobRef, str]:
        job = self.service.create_job(
            JobRequest(type=kind, params=params, **request), tenant_id=TENANT, owner_id="u1"
        )
        ref = JobRef(TENANT, job.job_id)
        return ref, self.runner.start_execution(ref, execution_name(job.job_id))

    def faulty(self, step: str, handler: Handler) -> Handler:
        """`handler`, raising the next of `faults[step]` / `faults_after[step]` while any."""

        def run(event: dict[str, Any], context: Any) -> Any:
            before, after = self.faults.get(step), self.faults_after.get(step)
            if before:
                raise before.pop(0)
            answer = handler(event, context)
            if after:
                raise after.pop(0)
            return answer

        return run

    def create(self, params: dict[str, Any], **request: Any) -> JobRef:
        """A queued demo job, not launched: `runner.admit` launches it as POST /jobs does."""
        job = self.service.create_job(
            JobRequest(type="demo", params=params, **request), tenant_id=TENANT, owner_id="u1"
        )
        return JobRef(TENANT, job.job_id)

    def slot_holders(self) -> set[str]:
        assert self.slots is not None, "parametrize max_running to cap run slots"
        return self.slots.holders().get(TENANT, set())

    def running_executions(self) -> list[str]:
        listed = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return [e["executionArn"] for e in listed if e["status"] == "RUNNING"]

    def wait(self, arn: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] in ENDED:
                return execution
            time.sleep(0.01)
        raise AssertionError(f"execution {arn} still running after {timeout} s")

    def wait_for_job(self, ref: JobRef, status: JobStatus, *, timeout: float = 10.0) -> JobRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.service.get(ref)
            if job.status is status:
                return job
            time.sleep(0.01)
        raise AssertionError(f"job {ref.job_id} never became {status.value}")

    def history(self, arn: str) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        return [event for page in pages for event in page["events"]]

    def states_entered(self, arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(arn)
            if event["type"].endswith("StateEntered")
        ]

    def log_seqs(self, ref: JobRef) -> list[int | None]:
        return [m.seq for m in self.service.messages_after(ref, 0, limit=100).messages]
