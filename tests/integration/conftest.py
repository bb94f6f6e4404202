"""moto-backed fixtures: real DynamoDB semantics (conditions, transactions) in process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_patches
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_tables import create_tables
from shared.domain.clock import ManualClock, SequentialIds
from shared.services.jobs import JobService
from shared.wiring import AWS_CONFIG
from tests.integration.scheduling import sfn_world as sfn_world  # ... on moto Step Functions
from tests.integration.scheduling import world as world  # the schedules/cleanup world fixture

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CURSOR_SECRET = b"test-cursor-secret-0123456789"


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    moto_patches.install()  # atomic requests and cheap transaction rollback, as in the service
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1", config=AWS_CONFIG)


@pytest.fixture
def table_names(dynamodb: DynamoDBClient) -> dict[str, str]:
    return create_tables(dynamodb, "test")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(dynamodb: DynamoDBClient, table_names: dict[str, str]) -> DynamoJobStore:
    return DynamoJobStore(
        dynamodb,
        TableNames(jobs=table_names["jobs"], messages=table_names["messages"]),
        CursorCodec(CURSOR_SECRET),
    )


@pytest.fixture
def service(store: DynamoJobStore, clock: ManualClock) -> JobService:
    return JobService(
        store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta(milliseconds=250)
    )
