"""Lambda faults in every task state of the JobRunner, on moto's Step Functions interpreter.

For each task (Prepare, ProcessBatch, RecordFailure, AwaitResume, Finalize and its fallback,
Notify) and each fault (Lambda's service errors, a task timeout or lost invocation after the
handler ran, a handler exception) raised once, twice and always, and a duplicate delivery of
every invocation: the job's executions run to their end, the faults stop (an outage ends), the
hourly cleanup runs if the job has not ended by itself, and then every invariant holds
(tests/faults/invariants.py). Each case's job is shaped so that the faulted task really runs.

Set FAULTS_REPORT=path to append each case's outcome (JSON lines) for the issue's table.
"""

from __future__ import annotations

import json
import os
from typing import Any, Final

import pytest

from shared.domain.models import JobStatus
from shared.runner import definition as d
from shared.services.jobs import JobRef
from tests.faults.injection import ALWAYS, LambdaFault
from tests.faults.world import World

ERRORS: Final = [fault for fault in LambdaFault if fault is not LambdaFault.DUPLICATE]
SERVICE_ERRORS: Final = {LambdaFault.SERVICE, LambdaFault.CLIENT_TIMEOUT, LambdaFault.THROTTLED}
TIMES: Final = {"once": 1, "twice": 2, "always": ALWAYS}
# Tasks inside the job's retry loop: a transient fault there costs a retry, not the job.
LOOP_STEPS: Final = frozenset({d.PREPARE, d.PROCESS, d.AWAIT_RESUME})


def _launch(world: World, step: str) -> JobRef:
    """A job whose run goes through `step` (a pause for AwaitResume, a failed try for
    RecordFailure, a push for Notify)."""
    params: dict[str, Any] = {"items": 4 if step == d.AWAIT_RESUME else 2}
    if step == d.RECORD_FAILURE:
        params["transientFailures"] = [0]
    ref = world.create(
        params,
        push="if_not_seen" if step == d.NOTIFY else "never",
        retry={"maxRetries": 2},  # enough for a fault twice, short when it is always
    )
    if step == d.AWAIT_RESUME:

        def pause_after_first_batch(task: str, event: dict[str, Any]) -> None:
            if task == d.PROCESS and event.get("cursor") == 0:
                world.service.pause(ref)

        world.on(ref, pause_after_first_batch)
    return ref


def _run(world: World, ref: JobRef) -> dict[str, Any]:
    """Run the job to its end, end the outage, sweep if needed; what happened."""
    assert world.runner.admit(ref)
    job = world.settle(ref)
    world.lambdas.clear()
    ended_alone = job.is_terminal
    if not ended_alone:
        world.sweep()
        job = world.settle(ref)
    return {
        "status": job.status.value,
        "error": job.error.code if job.error else None,
        "swept": not ended_alone,
        "executions": sorted(e["status"] for e in world.executions_of(ref)),
        "violations": world.violations(ref),
    }


def _report(case: dict[str, Any]) -> None:
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(case) + "\n")


@pytest.mark.parametrize("times", TIMES.values(), ids=TIMES.keys())
@pytest.mark.parametrize("fault", ERRORS, ids=[f.value for f in ERRORS])
@pytest.mark.parametrize("step", d.TASK_STEPS)
def test_a_lambda_fault_leaves_the_job_ended_once_with_exact_counters(
    world: World, step: str, fault: LambdaFault, times: int
) -> None:
    # Given a job whose run goes through `step`, and the fault planned there
    ref = _launch(world, step)
    world.lambdas.inject(step, fault, job_id=ref.job_id, times=times)
    # When it runs, the outage ends and (if the job did not end by itself) the cleanup sweeps
    outcome = _run(world, ref)
    fired = world.lambdas.fired(ref.job_id)
    _report({"step": step, "fault": fault.value, "times": times, "fired": fired, **outcome})
    # Then the fault really happened (a task that ran before its fault may not run again), and
    # every invariant holds
    assert fired >= 1
    assert outcome["violations"] == []
    transient = times != ALWAYS
    if transient and (step in LOOP_STEPS or fault in SERVICE_ERRORS - {LambdaFault.CLIENT_TIMEOUT}):
        # a retry absorbs it: Step Functions' for service errors, the job's own otherwise
        assert outcome["status"] == JobStatus.COMPLETED.value, outcome
    if step == d.NOTIFY:
        assert outcome["status"] == JobStatus.COMPLETED.value, outcome  # a push never fails a job


@pytest.mark.parametrize("step", d.TASK_STEPS)
def test_every_invocation_delivered_twice_counts_every_item_once(world: World, step: str) -> None:
    # Given a job whose every `step` invocation is delivered twice (at-least-once)
    ref = _launch(world, step)
    world.lambdas.inject(step, LambdaFault.DUPLICATE, job_id=ref.job_id, times=ALWAYS)
    # When it runs
    outcome = _run(world, ref)
    fired = world.lambdas.fired(ref.job_id)
    _report({"step": step, "fault": "duplicate", "times": ALWAYS, "fired": fired, **outcome})
    # Then it completed by itself, each item counted once
    assert fired >= 1
    assert outcome["violations"] == []
    assert (outcome["status"], outcome["swept"]) == (JobStatus.COMPLETED.value, False), outcome
