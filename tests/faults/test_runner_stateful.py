"""A stateful property of the JobRunner: whatever the interleaving of its states with Lambda
faults, commit faults, control requests racing a commit, pause, resume, cancel and clock jumps,
every invariant holds after every step, and once the faults stop every job ends.

The JobRunner's real definition runs in the small interpreter of tests/faults/asl.py (one state
per step, any live execution, continue-as-new included), every task calling the real handler;
two jobs of one tenant share one run slot, so the second waits queued and starts when the
first ends. The 1,000 examples (CI=true; 100 locally) run on the in-memory store of
tests/faults/memory.py: on moto a GetItem costs ~5 ms and a transaction ~20 ms here, which
would make them minutes. The same definition, handlers and faults run on moto's DynamoDB and
Step Functions in test_lambda_faults.py and test_store_faults.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Final, cast

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from shared.domain.envelope import Envelope
from shared.domain.errors import TetherError
from shared.domain.models import JobRecord, JobRequest
from shared.services.jobs import JobRef
from tests.faults.injection import LambdaFault
from tests.faults.rig import Rig, rig_context

EXAMPLES: Final = 1000 if os.environ.get("CI") else 100
STEPS: Final = 15
COMMIT_FAULTS: Final = ("ProvisionedThroughputExceededException", "ThrottlingException")
CONTROLS: Final = ("pause", "resume", "cancel")
SETTINGS: Final = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with rig_context() as built:
        yield built


class RunnerMachine(RuleBasedStateMachine):
    def __init__(self, rig: Rig) -> None:
        super().__init__()
        self.rig = rig
        self.tenant = rig.tenant()
        self.refs: list[JobRef] = []
        self.seen: dict[tuple[str, str, int], str] = {}  # every message read, by epoch and seq
        rig.reset()

    # -- setup and rules --------------------------------------------------------------------

    @initialize(
        items=st.lists(st.integers(0, 7), min_size=1, max_size=2),
        transient=st.lists(st.integers(0, 6), max_size=3),
        timeout=st.one_of(st.none(), st.integers(60, 7200)),
    )
    def launch(self, items: list[int], transient: list[int], timeout: int | None) -> None:
        for count in items:
            request = JobRequest(
                type="demo",
                params={"items": count, "transientFailures": transient},
                push="never",
                retry={"maxRetries": 2},
                timeout_seconds=timeout,
            )
            job = self.rig.service.create_job(request, tenant_id=self.tenant, owner_id="u1")
            ref = JobRef(self.tenant, job.job_id)
            self.refs.append(ref)
            self.rig.runner.admit(ref)

    @rule(pick=st.integers(0, 3), states=st.integers(1, 6))
    def advance(self, pick: int, states: int) -> None:
        for _ in range(states):
            movable = self.rig.interpreter.movable()
            if not movable:
                return
            self.rig.interpreter.step(movable[pick % len(movable)])

    @rule(fault=st.sampled_from(LambdaFault))
    def lambda_fault(self, fault: LambdaFault) -> None:
        self.rig.interpreter.faults.append(fault)

    @rule(code=st.sampled_from(COMMIT_FAULTS))
    def commit_fault(self, code: str) -> None:
        self.rig.store.fail_commits.append(code)

    @rule(job=st.integers(0, 1), action=st.sampled_from(CONTROLS))
    def control(self, job: int, action: str) -> None:
        self._control(self.refs[job % len(self.refs)], action)

    @rule(job=st.integers(0, 1), action=st.sampled_from(CONTROLS))
    def control_racing_a_commit(self, job: int, action: str) -> None:
        ref = self.refs[job % len(self.refs)]
        self.rig.store.before_commit.append(lambda: self._control(ref, action))

    @rule(seconds=st.sampled_from([1, 45, 600, 3600, 86_400]))
    def clock_jump(self, seconds: int) -> None:
        self.rig.clock.advance(seconds=seconds)

    def _control(self, ref: JobRef, action: str) -> None:
        try:
            if action == "pause":
                self.rig.service.pause(ref)
            elif action == "resume":
                self.rig.runner.resume(ref)
            else:
                self.rig.runner.cancel(ref)
        except TetherError:
            pass  # 409: the job's status forbids it (ended, or not paused)
        except ClientError:
            pass  # the store was throttled: the client got a 503 and may try again

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_job_keeps_the_invariants(self) -> None:
        for ref in self.refs:
            found = self._violations(self.rig.service.get(ref), must_end=False)
            assert found == [], f"{ref.job_id}: {found}"

    def _violations(self, job: JobRecord, *, must_end: bool) -> list[str]:
        """Between steps a job that just ended may still hold its slot and have an execution
        on its way to Finalize (cancel is asynchronous); once everything ran, neither."""
        found = self.rig.violations(job, must_end=must_end)
        return found + self._reused(self.rig.store.log(job.tenant_id, job.job_id))

    def _reused(self, log: list[Envelope]) -> list[str]:
        found: list[str] = []
        for message in log:
            key = (message.job_id or "", message.epoch or "", message.seq or 0)
            content = json.dumps(message.model_dump(mode="json"), sort_keys=True)
            if self.seen.setdefault(key, content) != content:
                found.append(f"seq {message.seq} rewritten under epoch {message.epoch}")
        return found

    # -- eventually -------------------------------------------------------------------------

    def teardown(self) -> None:
        """The outage ends: no more faults; resume what is paused; run everything to its end;
        let the hourly cleanup end what died. Then every job has ended, keeping the rest."""
        self.rig.interpreter.faults.clear()
        self.rig.store.fail_commits.clear()
        self.rig.store.before_commit.clear()
        if self.rig.drive(self.refs):
            event("an execution died: the hourly cleanup ran")
        for ref in self.refs:
            job = self.rig.service.get(ref)
            found = self._violations(job, must_end=True)
            assert found == [], f"{ref.job_id} at the end: {found}"
            event(f"ended {job.status.value}")


def test_the_runner_keeps_its_invariants_under_faults_and_control(rig: Rig) -> None:
    machine = cast("type[RuleBasedStateMachine]", lambda: RunnerMachine(rig))  # a factory
    run_state_machine_as_test(machine, settings=SETTINGS)
