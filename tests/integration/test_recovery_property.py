"""Property: whatever the interleaving of publish / drop / reconnect / ack / expiry, a client
that drops duplicate seqs ends with every seq exactly once and in order, or was told to resync;
and it is told to resync only when what it missed has expired.

Runs the real store logic, session and job service over two stores: in memory (tests/faults/
memory.py, DynamoDB's rules kept) for 1,000 examples in CI, and over moto with the real
DynamoDB adapters for 50, a cross-check of the adapters (moto costs ~0.3 s an example here).
The dispatcher's part (find the job's subscribers, post to each, forget the dead ones) is
played by `_dispatch`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from infra.local import moto_patches
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_tables import create_tables
from shared.domain.auth import Principal, Scope
from shared.domain.clock import ManualClock, RandomIds
from shared.domain.envelope import Envelope, MessageType
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.ports import JobStore
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession
from shared.wiring import AWS_CONFIG
from tests.faults.memory import MemoryConnectionStore, MemoryJobStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

EXAMPLES = 1000 if os.environ.get("CI") else 100
MOTO_EXAMPLES = 50 if os.environ.get("CI") else 20
ALICE = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))
OPERATIONS = st.lists(
    st.sampled_from(
        ["publish", "publish", "publish", "drop", "reconnect", "reconnect_cursor", "ack", "expire"]
    ),
    max_size=25,
)


@dataclass
class World:
    service: JobService
    connections: DynamoConnectionStore | MemoryConnectionStore
    session: WebSocketSession
    clock: ManualClock
    ids: Iterator[int] = field(default_factory=itertools.count)


@dataclass(frozen=True)
class Tables:
    client: DynamoDBClient
    names: dict[str, str]


@pytest.fixture(scope="module")
def tables() -> Iterator[Tables]:
    """moto, one client and Tether's tables, set up once for every example: starting moto,
    building a boto3 client and creating the tables each cost more than an example does."""
    moto_patches.install()
    with mock_aws():
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            config=AWS_CONFIG,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield Tables(client, create_tables(client, "prop"))


def _emptied(names: dict[str, str]) -> None:
    """Forget every item (and stream record) of the shared tables, in process: moto scans a
    whole table for an index query, so tables that grew over hundreds of examples would make
    each example slower than the last."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for name in names.values():
        table = backend.get_table(name)
        table.items.clear()
        if table.stream_shard is not None:
            table.stream_shard.items.clear()


def fresh_world(tables: Tables) -> World:
    """A new clock and services over the shared tables, emptied first."""
    _emptied(tables.names)
    client, names = tables.client, tables.names
    store = DynamoJobStore(
        client, TableNames(names["jobs"], names["messages"]), CursorCodec(b"p" * 32)
    )
    return _world(store, DynamoConnectionStore(client, names["connections"]))


def memory_world() -> World:
    return _world(MemoryJobStore(), MemoryConnectionStore())


def _world(store: JobStore, connections: DynamoConnectionStore | MemoryConnectionStore) -> World:
    clock = ManualClock()
    service = JobService(store, clock=clock, ids=RandomIds(), progress_min_interval=timedelta())
    runner = JobRunner(service, clock=clock, executions=None, batch_size=100)
    session = WebSocketSession(jobs=service, connections=connections, clock=clock, runner=runner)
    return World(service, connections, session, clock)


@dataclass
class Client:
    """What a well-behaved client does with frames: drop seen seqs, refuse gaps, honour resync."""

    connection: str | None = None
    last_seen: int = 0
    epoch: str | None = None
    accepted: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # seqs a resync told it to do without
    resyncs: int = 0

    def take(self, frames: list[Envelope]) -> None:
        for frame in frames:
            if frame.type is MessageType.BATCH:
                self.take([Envelope.model_validate(m) for m in frame.data["messages"]])
            elif frame.type is MessageType.RESYNC:
                self.resyncs += 1
                head = frame.data["seq"]
                self.skipped.extend(range(self.last_seen + 1, head + 1))
                self.last_seen, self.epoch = max(self.last_seen, head), frame.data["epoch"]
            elif frame.type is MessageType.SUBSCRIBED:
                self.epoch = frame.data["epoch"]
            elif frame.type is MessageType.ERROR:
                pytest.fail(f"error frame: {frame.data}")
            elif frame.seq is not None:
                self._accept(frame.seq)

    def _accept(self, seq: int) -> None:
        if seq <= self.last_seen:
            return  # a duplicate: replay and live delivery overlapped
        assert seq == self.last_seen + 1, f"gap: had {self.last_seen}, got {seq}"
        self.last_seen = seq
        self.accepted.append(seq)


def _subscribe(world: World, client: Client, ref: JobRef, *, with_since: bool) -> None:
    client.connection = f"conn-{next(world.ids)}"
    world.session.connect(client.connection, ALICE)
    frame: dict[str, Any] = {"action": "subscribe", "jobId": ref.job_id}
    if with_since:
        frame |= {"since": client.last_seen, "epoch": client.epoch}
    client.take(world.session.receive(client.connection, json.dumps(frame)))


def _dispatch(world: World, client: Client, ref: JobRef, after: int) -> None:
    messages = world.service.messages_after(ref, after).messages
    for subscriber in world.connections.subscribers(ref.tenant_id, ref.job_id, world.clock.now()):
        if subscriber.connection_id == client.connection:
            client.take(messages)
        else:
            world.connections.disconnect(subscriber.connection_id)  # it answered 410


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_every_seq_once_in_order_or_resync(operations: list[str]) -> None:
    _play(memory_world(), operations)


@settings(max_examples=MOTO_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_every_seq_once_in_order_or_resync_over_dynamodb(
    tables: Tables, operations: list[str]
) -> None:
    _play(fresh_world(tables), operations)


def _play(world: World, operations: list[str]) -> None:
    job = world.service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
    ref = JobRef("acme", job.job_id)
    client = Client()
    _subscribe(world, client, ref, with_since=True)
    job = world.service.start(ref, total=100)
    _dispatch(world, client, ref, after=1)

    for operation in operations:
        match operation:
            case "publish":
                head = world.service.get(ref).seq
                world.clock.advance(seconds=1)
                world.service.report_progress(ref, ProgressDelta(succeeded=1))
                _dispatch(world, client, ref, after=head)
            case "drop":
                client.connection = None  # the socket died; the server was not told
            case "reconnect":
                _subscribe(world, client, ref, with_since=True)
            case "reconnect_cursor":
                _subscribe(world, client, ref, with_since=False)
            case "ack" if client.connection is not None:
                ack = {"action": "ack", "jobId": ref.job_id, "seq": max(client.last_seen, 1)}
                assert world.session.receive(client.connection, json.dumps(ack)) == []
            case "expire":
                # A day later the log's head has expired, and API Gateway closed the socket
                # long ago (2 h at most).
                world.clock.advance(hours=25)
                client.connection = None

    # Finally the app comes back once more: it must end exactly at the head, having taken
    # every seq once and in order, except those a resync told it to do without; and a resync
    # only ever comes after the log's head expired
    _subscribe(world, client, ref, with_since=True)
    head = world.service.get(ref).seq
    assert client.last_seen == head
    assert sorted(client.accepted + client.skipped) == list(range(1, head + 1))
    assert len(set(client.accepted + client.skipped)) == head  # nothing twice
    if "expire" not in operations:
        assert (client.resyncs, client.accepted) == (0, list(range(1, head + 1)))
