"""The dispatcher's settings and dependencies, built once per cold start.

Kept apart from `shared.settings.TetherSettings` because the dispatcher needs neither the jobs
table nor the cursor secret that model requires; only where to find subscribers and where to
post. Keys come from `shared.constants`, like every other setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import constants as c
from shared.adapters.connections_api import ApiGatewayPoster, management_api_client
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.domain.clock import Clock, SystemClock
from shared.services.delivery import DEFAULT_MAX_PARALLEL, SubscriberDirectory
from shared.services.ports import ConnectionPoster
from shared.wiring import AWS_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    connections_table: str = Field(alias=c.ENV_CONNECTIONS_TABLE, min_length=1)
    websocket_management_url: str = Field(
        alias=c.ENV_WEBSOCKET_MANAGEMENT_URL, pattern=r"^https?://"
    )
    messages_table: str | None = Field(default=None, alias=c.ENV_MESSAGES_TABLE)
    """When set, stream records of any other table are ignored."""
    aws_endpoint_url: str | None = Field(default=None, alias=c.ENV_AWS_ENDPOINT_URL)


@dataclass(frozen=True, slots=True)
class DispatcherContext:
    settings: DeliverySettings
    connections: SubscriberDirectory
    poster: ConnectionPoster
    clock: Clock
    max_parallel: int = DEFAULT_MAX_PARALLEL


def dispatcher_context(
    settings: DeliverySettings,
    *,
    dynamodb: DynamoDBClient | None = None,
    poster: ConnectionPoster | None = None,
    clock: Clock | None = None,
) -> DispatcherContext:
    client = dynamodb or boto3.client(
        "dynamodb", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG
    )
    return DispatcherContext(
        settings=settings,
        connections=DynamoConnectionStore(client, settings.connections_table),
        poster=poster or ApiGatewayPoster(management_api_client(settings.websocket_management_url)),
        clock=clock or SystemClock(),
    )
