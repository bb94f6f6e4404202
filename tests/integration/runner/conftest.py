"""Fixtures for whole JobRunner executions: moto with its Step Functions interpreter on (this
folder's `dynamodb` overrides the integration one, so `service`, `store`, ... use it too), and
the deployed JobRunner `stack`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from functions import runner as runner_handlers
from infra.local import moto_patches
from infra.local import stepfunctions as local_sfn
from shared import constants as c
from shared.adapters.dynamo_jobs import DynamoJobStore
from shared.adapters.dynamo_limits import DynamoRunSlots
from shared.adapters.dynamo_maintenance import DynamoRunQueue
from shared.domain.clock import ManualClock
from shared.runner_wiring import RunnerContext
from shared.services.admission import Admission
from shared.services.jobs import JobService
from shared.services.runner import JobRunner
from shared.wiring import AWS_CONFIG
from tests.integration.runner.harness import BATCH_SIZE, PUSH_GRACE, LateExecutions, Stack

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    """The conftest fixture, with moto's Step Functions interpreter switched on."""
    moto_patches.install()
    # Waits and retry intervals are recorded, not slept; a task's timeout fires when the test
    # says (`local_sfn.expire_task_timeouts`), not on the wall clock.
    local_sfn.install(wait_scale=0.0, task_timeouts=False)
    with mock_aws(config=local_sfn.MOTO_CONFIG):
        yield boto3.client("dynamodb", region_name="us-east-1", config=AWS_CONFIG)


@pytest.fixture
def batches_per_execution() -> int:
    """The deployed default; a test parametrizes it low to exercise continue-as-new."""
    return c.DEFAULT_BATCHES_PER_EXECUTION


@pytest.fixture
def events_per_execution() -> int:
    """The deployed default; a test parametrizes it low to hand over on history events."""
    return c.DEFAULT_EVENTS_PER_EXECUTION


@pytest.fixture
def max_running() -> int | None:
    """No run-slot cap (every job launched at once); a test parametrizes a cap per tenant."""
    return None


@pytest.fixture
def stack(
    batches_per_execution: int,
    events_per_execution: int,
    max_running: int | None,
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    store: DynamoJobStore,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Stack:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    executions = LateExecutions(sfn)
    slots = DynamoRunSlots(dynamodb, table_names["limits"])
    admission = (
        Admission(
            service, slots, DynamoRunQueue(dynamodb, table_names["jobs"]), max_running=max_running
        )
        if max_running is not None
        else None
    )
    runner = JobRunner(
        service,
        clock=clock,
        executions=executions,
        batch_size=BATCH_SIZE,
        batches_per_execution=batches_per_execution,
        events_per_execution=events_per_execution,
        admission=admission,
    )
    built = Stack(service=service, runner=runner, sfn=sfn, clock=clock, slots=slots)
    runner_context = RunnerContext(runner=runner, push_grace_seconds=PUSH_GRACE)
    monkeypatch.setattr(runner_handlers, "context", lambda: runner_context)

    def process(event: dict[str, Any], context: Any) -> Any:
        built.batch_calls.append(int(event.get("cursor", 0)))
        answer = runner_handlers.process(event, context)
        for hook in list(built.after_batch):
            hook(event, answer)
        return answer

    handlers = {**local_sfn.runner_handlers(), "process": process}
    built.state_machine_arn = executions.deploy(
        {step: built.faulty(step, handler) for step, handler in handlers.items()}
    )
    return built
