"""A throwaway DynamoDB on moto with Tether's tables and a job service: what benches measure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import boto3
from moto import mock_aws

from infra.local import moto_patches
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_tables import create_tables
from shared.domain.clock import ManualClock, SequentialIds
from shared.services.jobs import JobService
from shared.wiring import AWS_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class BenchWorld:
    client: DynamoDBClient
    tables: dict[str, str]
    clock: ManualClock
    jobs: JobService


@contextmanager
def bench_world(prefix: str, *, progress_min_interval: timedelta) -> Iterator[BenchWorld]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    moto_patches.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", config=AWS_CONFIG)
        tables = create_tables(client, prefix)
        clock = ManualClock()
        store = DynamoJobStore(
            client, TableNames(tables["jobs"], tables["messages"]), CursorCodec(b"b" * 32)
        )
        jobs = JobService(
            store, clock=clock, ids=SequentialIds(), progress_min_interval=progress_min_interval
        )
        yield BenchWorld(client, tables, clock, jobs)
