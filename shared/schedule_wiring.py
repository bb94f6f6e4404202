"""Builds the schedules API, the launcher and the cleanup from settings.

One factory per entry point, called at cold start: the schedules routes of the HTTP API, the
launcher Lambda (targeted by Scheduler and the S3 import rule) and the hourly cleanup Lambda.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from shared.adapters.dynamo_limits import DynamoLease, DynamoRateLimiter
from shared.adapters.dynamo_maintenance import DynamoSweeper
from shared.adapters.dynamo_schedules import DynamoScheduleStore
from shared.adapters.stepfunctions import StepFunctionsExecutions
from shared.domain.clock import Clock, IdFactory, SystemClock
from shared.jobs.registry import JobCatalog
from shared.services.cleanup import Cleanup
from shared.services.launcher import Launcher
from shared.services.ports import ExecutionStatuses
from shared.services.runner import JobRunner
from shared.services.schedules import SchedulesApi
from shared.settings import TetherSettings
from shared.wiring import (
    admission,
    cursor_codec,
    dynamodb_client,
    job_service,
    load_settings,
    scheduler_gateway,
    step_functions_executions,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CLEANUP_LEASE_NAME = "cleanup"


def schedule_store(
    settings: TetherSettings, client: DynamoDBClient, clock: Clock | None = None
) -> DynamoScheduleStore:
    return DynamoScheduleStore(client, settings.schedules_table, cursor_codec(settings, clock))


def scheduling_runner(
    settings: TetherSettings,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> JobRunner:
    """A JobRunner that admits jobs through the run slots (executions may be absent)."""
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    jobs = job_service(settings, client=client, clock=clock, ids=ids)
    executions = step_functions_executions(settings)
    return JobRunner(
        jobs,
        clock=clock,
        executions=executions,
        batch_size=settings.batch_size,
        batches_per_execution=settings.batches_per_execution,
        # Without executions nothing launches, so nothing holds or frees a slot.
        admission=admission(settings, jobs, client) if executions is not None else None,
    )


def launcher(
    settings: TetherSettings | None = None,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    runner: JobRunner | None = None,
) -> Launcher:
    settings = load_settings(settings)
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    runner = runner or scheduling_runner(settings, client=client, clock=clock)
    return Launcher(
        runner,
        schedule_store(settings, client, clock),
        clock=clock,
        catalog=JobCatalog(import_bucket=settings.import_bucket),
    )


def cleanup(
    settings: TetherSettings | None = None,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    runner: JobRunner | None = None,
    executions: ExecutionStatuses | None = None,
) -> Cleanup:
    settings = load_settings(settings)
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    runner = runner or scheduling_runner(settings, client=client, clock=clock)
    if executions is None:
        gateway = step_functions_executions(settings)
        executions = gateway if isinstance(gateway, StepFunctionsExecutions) else None
    return Cleanup(
        runner=runner,
        sweeper=DynamoSweeper(
            client,
            jobs=settings.jobs_table,
            connections=settings.connections_table,
            devices=settings.devices_table,
        ),
        lease=DynamoLease(client, settings.limits_table, CLEANUP_LEASE_NAME),
        executions=executions,
        clock=clock,
        interval=timedelta(seconds=settings.cleanup_interval_seconds),
    )


def schedules_api(
    settings: TetherSettings,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    runner: JobRunner | None = None,
) -> SchedulesApi:
    """What the schedules routes of the HTTP handler need, built once per cold start (the
    caller is authenticated by the HTTP API's own authenticator)."""
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    return SchedulesApi(
        store=schedule_store(settings, client, clock),
        scheduler=scheduler_gateway(settings),
        launcher=launcher(settings, client=client, clock=clock, runner=runner),
        limiter=DynamoRateLimiter(
            client, settings.limits_table, limit=settings.write_rate_per_minute
        ),
        clock=clock,
    )
