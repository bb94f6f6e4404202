"""Builds the JobRunner's use cases from settings, once per cold start of a task Lambda."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import constants as c
from shared.domain.clock import Clock, IdFactory, SystemClock
from shared.push_wiring import push_notifier
from shared.services.ports import ExecutionGateway
from shared.services.push import PushNotifier
from shared.services.runner import JobRunner
from shared.settings import TetherSettings
from shared.wiring import (
    admission,
    dynamodb_client,
    job_service,
    load_settings,
    step_functions_executions,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True, slots=True)
class RunnerContext:
    runner: JobRunner
    # The Notify task's use case; None where push is not wired (no devices table).
    notifier: PushNotifier | None = None
    push_grace_seconds: int = c.DEFAULT_PUSH_GRACE_SECONDS


def runner_context(
    settings: TetherSettings | None = None,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    executions: ExecutionGateway | None = None,
    sns: Any | None = None,
) -> RunnerContext:
    settings = load_settings(settings)
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    jobs = job_service(settings, client=client, clock=clock, ids=ids)
    runner = JobRunner(
        jobs,
        clock=clock,
        executions=executions or step_functions_executions(settings),
        batch_size=settings.batch_size,
        batches_per_execution=settings.batches_per_execution,
        admission=admission(settings, jobs, client),
    )
    notifier = None
    if settings.devices_table and settings.connections_table:
        notifier = push_notifier(settings, jobs, client=client, sns=sns, clock=clock)
    return RunnerContext(
        runner=runner, notifier=notifier, push_grace_seconds=settings.push_grace_seconds
    )
