"""The cheap rig: the JobRunner's real definition on the small interpreter (tests/faults/asl.py),
every task the real handler (wrapped by a `LambdaFaults` plan), over the in-memory store, with
admission and the hourly cleanup. One per test module; cases take fresh tenants.

`drive()` runs a case's jobs to their end the way production would once an outage is over:
every live execution steps, a job parked paused is resumed, and when an execution died under
a live job (or left its slot held) the hourly cleanup runs.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast

import pytest

from functions import runner as runner_handlers
from infra.local import stepfunctions as local_sfn
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.errors import TetherError
from shared.domain.models import JobRecord, JobRequest, JobStatus
from shared.runner.definition import job_runner_definition
from shared.runner_wiring import RunnerContext
from shared.services.admission import Admission
from shared.services.cleanup import Cleanup
from shared.services.jobs import JobRef, JobService
from shared.services.ports import DeviceStore, PushGateway
from shared.services.push import PushNotifier
from shared.services.runner import JobRunner
from tests.faults import invariants as inv
from tests.faults.asl import Interpreter
from tests.faults.injection import LambdaFaults, job_of
from tests.faults.memory import MemoryJobStore, MemoryRunQueue, MemoryRunSlots

FUNCTION_ARN: Final = "arn:aws:lambda:us-east-1:123456789012:function:tether-job-runner-{}"
MAX_STEPS: Final = 600
Hook = Callable[[str, dict[str, Any]], None]


@dataclass
class MemorySweeper:
    """The cleanup's scans over the memory store (nothing expires within a case)."""

    store: MemoryJobStore

    def expired_jobs(self, now: datetime) -> list[tuple[str, str]]:  # noqa: ARG002 - the port's signature
        return []

    def unfinished_jobs(self) -> list[tuple[str, str]]:
        live = {JobStatus.RUNNING, JobStatus.PAUSED}
        return [key for key, job in self.store.jobs.items() if job.status in live]

    def purge_connections(self, now: datetime) -> int:  # noqa: ARG002 - the port's signature
        return 0

    def purge_disabled_devices(self) -> int:
        return 0


@dataclass
class FreeLease:
    """The cleanup's lease, where only one cleanup ever runs."""

    last: datetime | None = None

    def acquire(self, owner: str, now: datetime, *, seconds: int) -> bool:  # noqa: ARG002 - the port's signature
        return True

    def release(self, owner: str) -> None:  # noqa: ARG002 - the port's signature
        return None

    def last_run(self) -> datetime | None:
        return self.last

    def record_run(self, moment: datetime) -> None:
        self.last = moment


class NoDevices:
    """The owner has no push devices (and no delivery cursor): Notify runs, pushes nothing."""

    def list(self, tenant_id: str, owner_id: str) -> list[Any]:  # noqa: ARG002 - the port's signature
        return []

    def cursor(self, tenant_id: str, subject: str, job_id: str) -> None:  # noqa: ARG002 - the port's signature
        return None


@dataclass
class Rig:
    store: MemoryJobStore
    slots: MemoryRunSlots
    service: JobService
    runner: JobRunner
    cleanup: Cleanup
    interpreter: Interpreter
    clock: ManualClock
    lambdas: LambdaFaults
    hooks: dict[str, list[Hook]] = field(default_factory=dict)  # by job id
    context: RunnerContext | None = None  # what its task handlers use
    _tenants: Iterator[int] = field(default_factory=itertools.count)

    def tenant(self) -> str:
        return f"m{next(self._tenants)}"

    def create(self, tenant: str, params: dict[str, Any], **request: Any) -> JobRef:
        job = self.service.create_job(
            JobRequest(type="demo", params=params, **request), tenant_id=tenant, owner_id="u1"
        )
        return JobRef(tenant, job.job_id)

    def on(self, ref: JobRef, hook: Hook) -> None:
        self.hooks.setdefault(ref.job_id, []).append(hook)

    def reset(self) -> None:
        self.lambdas.clear()
        self.hooks.clear()
        self.interpreter.executions.clear()
        self.interpreter.faults.clear()
        self.store.before_commit.clear()
        self.store.fail_commits.clear()

    def hooked(self, step: str, handler: local_sfn.TaskHandler) -> local_sfn.TaskHandler:
        def run(event: dict[str, Any], context: Any) -> Any:
            answer = handler(event, context)
            for hook in list(self.hooks.get(job_of(event), [])):
                hook(step, event)
            return answer

        return run

    def resume_parked(self, refs: list[JobRef]) -> bool:
        """Resume one job parked paused (what its user does); False if none is."""
        for ref in refs:
            job = self.service.get(ref)
            if job.status is JobStatus.PAUSED and job.task_token:
                with contextlib.suppress(TetherError):  # it ended meanwhile (409)
                    self.runner.resume(ref)
                return True
        return False

    def drive(self, refs: list[JobRef], *, sweep: bool = True) -> bool:
        """Run the jobs' executions to their end; True if the hourly cleanup had to run."""
        swept = False
        for _ in range(MAX_STEPS):
            movable = self.interpreter.movable()
            if movable:
                self.interpreter.step(movable[0])
                continue
            if self.resume_parked(refs):
                continue
            if not sweep:
                return False
            died = any(e.status == "FAILED" for e in self.interpreter.executions.values())
            if swept or (not died and all(self.service.get(r).is_terminal for r in refs)):
                return swept
            self.clock.advance(hours=1, seconds=1)
            self.cleanup.run("rig")
            swept = True
        raise AssertionError(f"jobs still running after {MAX_STEPS} steps")

    def violations(self, job: JobRecord, *, must_end: bool) -> list[str]:
        log = self.store.log(job.tenant_id, job.job_id)
        running = [e.arn for e in self.interpreter.alive(job.job_id)]
        found = inv.counter_violations(job) + inv.log_violations(job, log)
        if must_end:
            found += inv.slot_violations(job, self.slots.holders())
            found += inv.execution_violations(job, running)
        if job.is_terminal or running or job.status is JobStatus.QUEUED:
            return found
        ended = self.interpreter.status(job.execution_arn or "")
        if must_end or ended != "FAILED":  # a failed execution is the hourly sweep's to end
            found.append(f"a {job.status.value} job without a live execution ({ended})")
        return found


def build_rig() -> Rig:
    store, slots, clock = MemoryJobStore(), MemoryRunSlots(), ManualClock()
    service = JobService(store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta())
    lambdas = LambdaFaults()
    steps = local_sfn.runner_handlers()
    arns = {step: FUNCTION_ARN.format(step.replace("_", "-")) for step in steps}
    interpreter = Interpreter(
        definition=job_runner_definition(arns),
        handlers={},
        clock=clock,
        context=local_sfn.LocalLambdaContext("task", FUNCTION_ARN.format("task")),
    )
    runner = JobRunner(
        service,
        clock=clock,
        executions=interpreter,
        batch_size=2,
        batches_per_execution=2,
        admission=Admission(service, slots, MemoryRunQueue(store), max_running=1),
    )
    cleanup = Cleanup(
        runner=runner,
        sweeper=MemorySweeper(store),
        lease=FreeLease(),
        executions=interpreter,
        clock=clock,
        interval=timedelta(hours=1),
    )
    rig = Rig(store, slots, service, runner, cleanup, interpreter, clock, lambdas)
    interpreter.handlers = {
        arns[step]: lambdas.wrap(step, rig.hooked(step, handler)) for step, handler in steps.items()
    }
    return rig


@contextmanager
def rig_context() -> Iterator[Rig]:
    """A rig whose task handlers use its runner (functions.runner.context patched)."""
    rig = build_rig()
    with pytest.MonkeyPatch.context() as patch:
        nobody = NoDevices()
        notifier = PushNotifier(
            jobs=rig.service,
            devices=cast("DeviceStore", nobody),
            gateway=cast("PushGateway", nobody),  # never called: nobody has a device
            cursors=nobody,
            clock=rig.clock,
        )
        rig.context = RunnerContext(runner=rig.runner, notifier=notifier, push_grace_seconds=0)
        patch.setattr(runner_handlers, "context", lambda: rig.context)
        yield rig
