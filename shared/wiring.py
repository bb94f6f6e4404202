"""Builds the services from settings: the one place that picks concrete adapters.

Handlers call these factories at cold start; tests call them with moto's endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.domain.clock import Clock, IdFactory, RandomIds, SystemClock
from shared.services.jobs import JobService
from shared.settings import TetherSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Standard retry mode retries throttling and transient errors with backoff (botocore's own).
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def dynamodb_client(settings: TetherSettings) -> DynamoDBClient:
    return boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG)


def job_store(settings: TetherSettings, client: DynamoDBClient | None = None) -> DynamoJobStore:
    return DynamoJobStore(
        client or dynamodb_client(settings),
        TableNames(jobs=settings.jobs_table, messages=settings.messages_table),
        CursorCodec(settings.cursor_secret.get_secret_value().encode()),
    )


def job_service(
    settings: TetherSettings,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> JobService:
    return JobService(
        job_store(settings, client),
        clock=clock or SystemClock(),
        ids=ids or RandomIds(),
        progress_min_interval=settings.progress_min_interval,
    )
