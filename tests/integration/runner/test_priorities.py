"""Priorities and per-tenant concurrency on real DynamoDB conditional writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest

from functions import runner as runner_handlers
from shared.adapters.dynamo_limits import DynamoRunSlots
from shared.adapters.dynamo_maintenance import DynamoRunQueue
from shared.domain.clock import ManualClock
from shared.domain.models import JobRequest, JobStatus
from shared.runner_wiring import RunnerContext
from shared.services.admission import Admission
from shared.services.jobs import JobRef, JobService
from shared.services.runner import JobRunner
from tests.integration.runner.harness import LateExecutions, Stack
from tests.integration.scheduling import World

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _create(world: World, priority: str, tenant: str = "acme") -> str:
    world.clock.advance(seconds=1)  # distinct creation times: oldest first within a priority
    status, created = world.call(
        "POST",
        "/jobs",
        {"type": "demo", "params": {"items": 1}, "priority": priority},
        tenant=tenant,
    )
    assert status == 202, created
    return str(created["job"]["jobId"])


def _holders(world: World, tenant: str = "acme") -> set[str]:
    return DynamoRunSlots(world.client, world.tables["limits"]).holders().get(tenant, set())


def test_five_jobs_of_mixed_priority_with_a_cap_of_two_start_in_priority_order(
    world: World,
) -> None:
    # Given a cap of 2 running jobs per tenant and five jobs created in this order
    low_a, normal_b, high_c, normal_d, high_e = (
        _create(world, p) for p in ("low", "normal", "high", "normal", "high")
    )

    # Then the first two took the slots and the other three wait queued
    assert world.executions.started == [low_a, normal_b]
    assert _holders(world) == {low_a, normal_b}
    for job_id in (high_c, normal_d, high_e):
        assert world.jobs.get(JobRef("acme", job_id)).status is JobStatus.QUEUED
    for job_id in (low_a, normal_b):
        world.start("acme", job_id)

    # When running jobs end one at a time, each freed slot goes to the best waiting job:
    # highest priority first, oldest first within a priority
    for finished in (low_a, normal_b, high_c, high_e, normal_d):
        world.finish("acme", finished)
        newest = world.executions.started[-1]
        if world.jobs.get(JobRef("acme", newest)).status is JobStatus.QUEUED:
            world.start("acme", newest)
        assert len(_holders(world)) <= 2

    # Then they started high C, high E (older high first), then normal D
    assert world.executions.started == [low_a, normal_b, high_c, high_e, normal_d]
    assert _holders(world) == set()


def test_the_cap_is_per_tenant_and_a_cancelled_waiting_job_never_starts(world: World) -> None:
    first, second, waiting = (_create(world, "normal") for _ in range(3))
    # Another tenant's jobs are not held back by acme's full slots
    other = _create(world, "low", tenant="globex")
    assert world.executions.started == [first, second, other]

    # When the waiting job is cancelled and a slot frees
    assert world.call("POST", f"/jobs/{waiting}/cancel")[1]["status"] == "cancelled"
    world.start("acme", first)
    world.finish("acme", first)

    # Then nothing else starts, and the free slot stays free for the next job
    assert world.executions.started == [first, second, other]
    assert _holders(world) == {second}
    later = _create(world, "low")
    assert world.executions.started[-1] == later


def test_a_tenants_slot_item_may_lower_its_cap(world: World) -> None:
    # Given acme's slot item says maxRunning = 1 (the configured default is 2)
    world.client.put_item(
        TableName=world.tables["limits"],
        Item={"bucket": {"S": "slots#acme"}, "tenantId": {"S": "acme"}, "maxRunning": {"N": "1"}},
    )
    first, second = _create(world, "normal"), _create(world, "high")
    assert world.executions.started == [first]
    world.start("acme", first)
    world.finish("acme", first)
    assert world.executions.started == [first, second]


def test_a_retried_launch_or_finalize_never_takes_or_frees_two_slots(world: World) -> None:
    first, second, third = (_create(world, "normal") for _ in range(3))
    # A duplicated launch of a holder is admitted again without taking another slot
    assert world.runner.admit(JobRef("acme", first))
    assert _holders(world) == {first, second}
    world.start("acme", first)
    world.finish("acme", first)
    world.finish("acme", first)  # a retried Finalize

    assert _holders(world) == {second, third}
    assert world.executions.started == [first, second, third]


# -- end to end: the real JobRunner on moto's Step Functions interpreter ----------------------


@pytest.fixture
def capped_stack(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Stack:
    """test_runner's stack, with a run-slot cap of 1 per tenant."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    admission = Admission(
        service,
        DynamoRunSlots(dynamodb, table_names["limits"]),
        DynamoRunQueue(dynamodb, table_names["jobs"]),
        max_running=1,
    )
    executions = LateExecutions(sfn)
    runner = JobRunner(
        service, clock=clock, executions=executions, batch_size=100, admission=admission
    )
    monkeypatch.setattr(runner_handlers, "context", lambda: RunnerContext(runner=runner))
    executions.deploy()
    return Stack(service=service, runner=runner, sfn=sfn, clock=clock)


def test_a_waiting_job_starts_when_the_running_ones_execution_finalizes(
    capped_stack: Stack,
) -> None:
    # Given a cap of 1 and two jobs admitted one after the other
    service, runner = capped_stack.service, capped_stack.runner
    first, second = (
        service.create_job(
            JobRequest(type="demo", params={"items": n}), tenant_id="acme", owner_id="u1"
        )
        for n in (300, 200)
    )
    assert runner.admit(JobRef("acme", first.job_id)) is True
    assert runner.admit(JobRef("acme", second.job_id)) is False

    # When the first one's execution runs to its end
    done = capped_stack.wait_for_job(JobRef("acme", first.job_id), JobStatus.COMPLETED)

    # Then Finalize gave its slot to the second, which ran to its end too
    later = capped_stack.wait_for_job(JobRef("acme", second.job_id), JobStatus.COMPLETED)
    assert done.finished_at is not None
    assert later.started_at is not None
    assert later.started_at >= done.finished_at
    assert later.execution_arn is not None
    assert capped_stack.wait(later.execution_arn)["status"] == "SUCCEEDED"
