"""Builds the push use cases from settings: the SNS gateway, devices, the JobRunner's notifier.

Kept apart from `shared.wiring` so the HTTP API's and the runner's own wiring stay as they are;
both call in here for the push parts only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3

from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_devices import DynamoDeviceStore
from shared.adapters.dynamo_limits import DynamoRateLimiter
from shared.adapters.sns_push import SnsPushGateway
from shared.domain.clock import Clock, SystemClock
from shared.services.jobs import JobService
from shared.services.push import Devices, PushNotifier
from shared.settings import TetherSettings
from shared.wiring import AWS_CONFIG, dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def sns_client(settings: TetherSettings) -> Any:
    return boto3.client("sns", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG)


def push_gateway(settings: TetherSettings, sns: Any | None = None) -> SnsPushGateway:
    return SnsPushGateway(sns or sns_client(settings), settings.push_applications)


def devices(
    settings: TetherSettings,
    *,
    client: DynamoDBClient | None = None,
    sns: Any | None = None,
    clock: Clock | None = None,
) -> Devices:
    """What `POST /devices` and `DELETE /devices/{id}` run on."""
    client = client or dynamodb_client(settings)
    return Devices(
        store=DynamoDeviceStore(client, settings.devices_table),
        gateway=push_gateway(settings, sns),
        clock=clock or SystemClock(),
        limiter=DynamoRateLimiter(
            client, settings.limits_table, limit=settings.write_rate_per_minute
        )
        if settings.limits_table
        else None,
    )


def push_notifier(
    settings: TetherSettings,
    jobs: JobService,
    *,
    client: DynamoDBClient | None = None,
    sns: Any | None = None,
    clock: Clock | None = None,
) -> PushNotifier:
    """The JobRunner's Notify task: devices, delivery cursors and SNS."""
    client = client or dynamodb_client(settings)
    return PushNotifier(
        jobs=jobs,
        devices=DynamoDeviceStore(client, settings.devices_table),
        gateway=push_gateway(settings, sns),
        cursors=DynamoConnectionStore(client, settings.connections_table),
        clock=clock or SystemClock(),
    )
