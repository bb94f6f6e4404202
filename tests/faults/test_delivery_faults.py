"""Delivery faults: the dispatcher crashing in the middle of a stream batch (the Lambda dies, no
partial-batch answer: the whole batch is delivered again) with half of the connections gone
(410). The real dispatcher handler runs on the messages table's stream records read from moto.

Invariants: every live connection ends with every seq of the log, in order once a client
drops the seqs it already has (a redelivered batch repeats, never skips); gone connections are
removed and get nothing once found gone; the redelivered batch succeeds whole.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Final

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from functions import dispatcher
from infra.local import moto_patches
from infra.local.events import LocalLambdaContext
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_tables import create_tables
from shared.delivery_wiring import DeliverySettings, dispatcher_context
from shared.domain.auth import Principal, Scope
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.ports import PostOutcome
from shared.wiring import AWS_CONFIG

ALICE: Final = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))
MANAGEMENT_URL: Final = "https://abc123.execute-api.us-east-1.amazonaws.com/test"
LIVE: Final = ("live-0", "live-1", "live-2")
GONE: Final = ("gone-0", "gone-1", "gone-2")


class Crash(BaseException):
    """The dispatcher's process dies (out of memory, a timeout): nothing is answered."""


class CrashingPoster:
    """Posts to live connections, answers 410 for gone ones, and dies after `crash_after`."""

    def __init__(self, crash_after: int | None) -> None:
        self.crash_after = crash_after
        self.posts = 0
        self.received: dict[str, list[int]] = defaultdict(list)
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        with self._lock:
            if self.crash_after is not None and self.posts >= self.crash_after:
                raise Crash
            self.posts += 1
            if connection_id in GONE:
                return PostOutcome.GONE
            self.received[connection_id].append(int(json.loads(data)["seq"]))
        return PostOutcome.DELIVERED


def _client_view(seqs: list[int]) -> list[int]:
    """What a client keeps: it drops every seq it already has."""
    kept: list[int] = []
    for seq in seqs:
        if not kept or seq > kept[-1]:
            assert seq == (kept[-1] if kept else 0) + 1, f"gap before {seq} in {seqs}"
            kept.append(seq)
    return kept


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    moto_patches.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=AWS_CONFIG)
        names = create_tables(dynamodb, "delivery")
        clock = ManualClock()
        store = DynamoJobStore(
            dynamodb, TableNames(names["jobs"], names["messages"]), CursorCodec(b"d" * 32)
        )
        service = JobService(
            store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta()
        )
        yield {"dynamodb": dynamodb, "names": names, "clock": clock, "service": service}


def _records(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        config=Config(account_id_endpoint_mode="disabled"),
    )
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for raw in streams.get_records(ShardIterator=iterator)["Records"]:
            record: dict[str, Any] = json.loads(json.dumps(raw, default=str))
            record["dynamodb"].pop("ApproximateCreationDateTime", None)
            record["eventSourceARN"] = arn
            records.append(record)
    return records


@pytest.mark.parametrize("crash_after", [1, 4, 9], ids=["early", "middle", "late"])
def test_a_batch_redelivered_after_a_crash_reaches_every_live_client_whole(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, crash_after: int
) -> None:
    # Given a job with six messages watched by six connections, half of them gone (410)
    service, clock, names = world["service"], world["clock"], world["names"]
    job = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
    ref = JobRef("acme", job.job_id)
    connections = DynamoConnectionStore(world["dynamodb"], names["connections"])
    for connection_id in (*LIVE, *GONE):
        connections.connect(connection_id, ALICE, clock.now())
        record = connections.get(connection_id, clock.now())
        assert record is not None
        connections.subscribe(record, job.job_id, clock.now())
    service.start(ref, total=10)
    for _ in range(4):
        clock.advance(seconds=1)
        service.report_progress(ref, ProgressDelta(succeeded=1))
    head = service.get(ref).seq
    batch = {"Records": _records(world["dynamodb"], names["messages"])}
    settings = DeliverySettings(
        connections_table=names["connections"],
        websocket_management_url=MANAGEMENT_URL,
        messages_table=names["messages"],
    )

    def handle(poster: CrashingPoster) -> dict[str, Any]:
        context = dispatcher_context(
            settings, dynamodb=world["dynamodb"], poster=poster, clock=clock
        )
        monkeypatch.setattr(dispatcher, "context", lambda: context)
        answer: dict[str, Any] = dispatcher.handler(batch, LocalLambdaContext())
        return answer

    # When the dispatcher dies partway through the batch, and the stream delivers it again
    crashing = CrashingPoster(crash_after)
    with pytest.raises(Crash):
        handle(crashing)
    healthy = CrashingPoster(None)
    answer = handle(healthy)

    # Then the redelivery succeeded whole, every live client has every seq (repeats dropped)
    assert answer["batchItemFailures"] == []
    for connection_id in LIVE:
        seen = crashing.received[connection_id] + healthy.received[connection_id]
        assert _client_view(seen) == list(range(1, head + 1))
    # and the gone connections were removed and got nothing
    live = connections.subscribers("acme", job.job_id, clock.now())
    assert sorted(s.connection_id for s in live) == sorted(LIVE)
    for connection_id in GONE:
        assert crashing.received[connection_id] == healthy.received[connection_id] == []
