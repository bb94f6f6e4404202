"""Lambda faults in every task state of the JobRunner.

For each task (Prepare, ProcessBatch, RecordFailure, AwaitResume, Finalize and what the
definition adds, Notify) and each fault (Lambda's service errors, a task timeout or a lost
invocation after the handler ran, a handler exception) raised once, twice and always, and a
duplicate delivery of every invocation: the job's executions run to their end, the faults stop
(the outage ends), the hourly cleanup runs if an execution died, and then every invariant holds
(tests/faults/invariants.py). Each case's job is shaped so that the faulted task really runs.

The whole matrix runs on the small interpreter of the real definition (tests/faults/asl.py,
milliseconds a case); every fault once, and the service error and the crash always, run again
on moto's own Step Functions interpreter (a third of a second a case), which must end the job
the same way: the two interpreters hold each other to the same semantics.

FAULTS_REPORT=path appends each case's outcome (JSON lines) for the issue's table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import pytest

from functions import runner as runner_handlers
from shared.domain.models import JobRecord, JobStatus
from shared.runner import definition as d
from shared.runner_wiring import RunnerContext
from tests.faults.injection import ALWAYS, LambdaFault
from tests.faults.rig import Rig, rig_context
from tests.faults.world import World

ERRORS: Final = [fault for fault in LambdaFault if fault is not LambdaFault.DUPLICATE]
RETRIED_BY_STEP_FUNCTIONS: Final = frozenset(
    {LambdaFault.SERVICE, LambdaFault.CLIENT_TIMEOUT, LambdaFault.THROTTLED}
)
NOT_RETRIED: Final = frozenset({LambdaFault.TIMEOUT, LambdaFault.HANDLER, LambdaFault.DUPLICATE})
TIMES: Final = {"once": 1, "twice": 2, "always": ALWAYS}
# Tasks inside the job's retry loop: a transient fault there costs a retry, not the job.
LOOP_STEPS: Final = frozenset({d.PREPARE, d.PROCESS, d.AWAIT_RESUME})
# The bookkeeping tasks retry any failure twice themselves (idempotently): a fault that passes
# within that costs nothing either.
BOOKKEEPING_STEPS: Final = frozenset({d.RECORD_FAILURE, d.FINALIZE})


@dataclass(frozen=True)
class Case:
    step: str
    fault: LambdaFault
    times: int

    @property
    def id(self) -> str:
        times = {v: k for k, v in TIMES.items()}[self.times]
        return f"{self.step}-{self.fault.value}-{times}"

    def job(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Params and request of a job whose run goes through the step: a pause for
        AwaitResume, a failed try for RecordFailure, a push for Notify."""
        params: dict[str, Any] = {"items": 4 if self.step == d.AWAIT_RESUME else 2}
        if self.step == d.RECORD_FAILURE:
            params["transientFailures"] = [0]
        request = {
            "push": "if_not_seen" if self.step == d.NOTIFY else "never",
            "retry": {"maxRetries": 2},  # enough for a fault twice, short when it is always
        }
        return params, request

    def pause_hook(self, pause: Any) -> Any:
        def pause_after_first_batch(task: str, event: dict[str, Any]) -> None:
            if task == d.PROCESS and event.get("cursor") == 0:
                pause()

        return pause_after_first_batch


MATRIX: Final = [
    Case(step, fault, times)
    for step in d.TASK_STEPS
    for fault in ERRORS
    for times in TIMES.values()
] + [Case(step, LambdaFault.DUPLICATE, ALWAYS) for step in d.TASK_STEPS]
# On moto (a third of a second a case): every fault once in ProcessBatch, a service error once
# in every task, a crash that never stops in ProcessBatch and Finalize, and AwaitResume's
# States.Timeout (the pause bound): every error name and path moto must agree on.
ON_MOTO: Final = [
    case
    for case in MATRIX
    if (case.step == d.PROCESS and case.times == 1)
    or (case.step == d.PROCESS and case.times == ALWAYS and case.fault in NOT_RETRIED)
    or (case.fault is LambdaFault.SERVICE and case.times == 1)
    or (case.fault is LambdaFault.HANDLER and case.times == ALWAYS and case.step == d.FINALIZE)
    or (case.step == d.AWAIT_RESUME and case.fault is LambdaFault.TIMEOUT and case.times == 1)
]


def _outcome(job: JobRecord, swept: bool, violations: list[str], fired: int) -> dict[str, Any]:
    return {
        "status": job.status.value,
        "error": job.error.code if job.error else None,
        "swept": swept,
        "fired": fired,
        "violations": violations,
    }


@contextmanager
def handlers_of(context: RunnerContext | None) -> Iterator[None]:
    """The task handlers run with this context (the rig's or moto's world's) meanwhile."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_handlers, "context", lambda: context)
        yield


def run_on_rig(rig: Rig, case: Case) -> dict[str, Any]:
    with handlers_of(rig.context):
        return _run_on_rig(rig, case)


def run_on_moto(world: World, case: Case) -> dict[str, Any]:
    with handlers_of(world.context):
        return _run_on_moto(world, case)


def _run_on_rig(rig: Rig, case: Case) -> dict[str, Any]:
    params, request = case.job()
    ref = rig.create(rig.tenant(), params, **request)
    if case.step == d.AWAIT_RESUME:
        rig.on(ref, case.pause_hook(lambda: rig.service.pause(ref)))
    rig.lambdas.inject(case.step, case.fault, job_id=ref.job_id, times=case.times)
    assert rig.runner.admit(ref)
    rig.drive([ref], sweep=False)  # with the fault
    rig.lambdas.clear()  # the outage ends
    swept = rig.drive([ref])
    job = rig.service.get(ref)
    return _outcome(job, swept, rig.violations(job, must_end=True), rig.lambdas.fired(ref.job_id))


def _run_on_moto(world: World, case: Case) -> dict[str, Any]:
    params, request = case.job()
    ref = world.create(params, **request)
    if case.step == d.AWAIT_RESUME:
        world.on(ref, case.pause_hook(lambda: world.service.pause(ref)))
    world.lambdas.inject(case.step, case.fault, job_id=ref.job_id, times=case.times)
    assert world.runner.admit(ref)
    job = world.settle(ref)
    world.lambdas.clear()
    swept = False
    if not job.is_terminal or any(e["status"] != "SUCCEEDED" for e in world.executions_of(ref)):
        world.sweep()
        job, swept = world.settle(ref), True
    return _outcome(job, swept, world.violations(ref), world.lambdas.fired(ref.job_id))


def _report(engine: str, case: Case, outcome: dict[str, Any]) -> None:
    path = os.environ.get("FAULTS_REPORT")
    if path:
        row = {"engine": engine, "step": case.step, "fault": case.fault.value}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**row, "times": case.times, **outcome}) + "\n")


def _expect(case: Case, outcome: dict[str, Any]) -> None:
    """What must hold whatever the fault, and what a transient fault must not cost."""
    assert outcome["fired"] >= 1, "the fault never happened"
    assert outcome["violations"] == []
    if case.step == d.AWAIT_RESUME and case.fault is LambdaFault.TIMEOUT:
        # AwaitResume's States.Timeout is its TimeoutSecondsPath passing: the pause bound (a
        # Lambda that times out is Lambda.Unknown / Sandbox.Timedout, not States.Timeout)
        assert (outcome["status"], outcome["error"]) == ("failed", "pause_expired"), outcome
        return
    transient = case.times != ALWAYS
    retried = case.step in LOOP_STEPS | BOOKKEEPING_STEPS or case.fault in RETRIED_BY_STEP_FUNCTIONS
    if case.fault is LambdaFault.DUPLICATE or case.step == d.NOTIFY or (transient and retried):
        # a retry absorbs it (Step Functions' for service errors, the job's own otherwise), a
        # duplicate changes nothing, and a push never fails a job
        assert outcome["status"] == JobStatus.COMPLETED.value, outcome


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with rig_context() as built:
        yield built


@pytest.mark.parametrize("case", MATRIX, ids=[case.id for case in MATRIX])
def test_a_lambda_fault_leaves_the_job_ended_once_with_exact_counters(rig: Rig, case: Case) -> None:
    # Given a job whose run goes through the case's task, and the fault planned there
    rig.reset()
    # When it runs, the outage ends and (if an execution died) the cleanup sweeps
    outcome = run_on_rig(rig, case)
    _report("asl", case, outcome)
    # Then the fault happened, every invariant holds, and a transient fault cost nothing
    _expect(case, outcome)


@pytest.mark.parametrize("case", ON_MOTO, ids=[case.id for case in ON_MOTO])
def test_moto_s_interpreter_ends_the_job_the_same_way(world: World, rig: Rig, case: Case) -> None:
    # Given the same case on moto's Step Functions interpreter
    rig.reset()
    expected = run_on_rig(rig, case)
    # When it runs there
    outcome = run_on_moto(world, case)
    _report("moto", case, outcome)
    # Then it holds the same invariants and ends the job exactly as the small interpreter did
    _expect(case, outcome)
    same = ("status", "error", "swept")
    assert {k: outcome[k] for k in same} == {k: expected[k] for k in same}
