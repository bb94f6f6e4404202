"""The dispatcher on moto: real stream records of the job store → live subscribers.

Jobs and messages are written through JobService and read back from the messages table's
stream, so every record is exactly what the job store produces, in Lambda's event shape.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.apigatewaymanagementapi.models import (
    ApiGatewayManagementApiBackend,
    apigatewaymanagementapi_backends,
)
from moto.core.exceptions import JsonRESTError

from functions import dispatcher
from infra.local.events import LocalLambdaContext
from shared.adapters.connections_api import (
    POSTER_CONFIG,
    POSTER_MAX_ATTEMPTS,
    ApiGatewayPoster,
    management_api_client,
)
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.constants import SERVICE_NAME
from shared.delivery_wiring import DeliverySettings, DispatcherContext, dispatcher_context
from shared.domain.auth import Principal, Scope
from shared.domain.models import JobRecord, JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.ports import PostOutcome, Subscriber

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from shared.domain.clock import ManualClock

ALICE = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))
MANAGEMENT_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/test"
SAMPLE_EVENT = Path(__file__).parents[2] / "events" / "dispatcher_stream_insert.json"
Event = dict[str, Any]


# -- fakes and helpers -------------------------------------------------------------------------


def _throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "LimitExceededException", "Message": "slow down"}},
        "PostToConnection",
    )


class FakePoster:
    """A ConnectionPoster: delivers, answers GONE, or keeps failing (retries exhausted)."""

    def __init__(self, *, gone: set[str] | None = None, failing: set[str] | None = None) -> None:
        self.gone = gone or set()
        self.failing = failing or set()
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        if connection_id in self.failing:
            raise _throttled()
        if connection_id in self.gone:
            return PostOutcome.GONE
        with self._lock:
            self.received[connection_id].append(json.loads(data))
        return PostOutcome.DELIVERED

    def seqs(self, connection_id: str) -> list[tuple[str, int]]:
        return [(m["jobId"], m["seq"]) for m in self.received[connection_id]]


class FailingDirectory:
    """The connections store, except that listing one job's subscribers fails."""

    def __init__(self, store: DynamoConnectionStore, broken_job: str) -> None:
        self._store = store
        self._broken_job = broken_job

    def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> list[Subscriber]:
        if job_id == self._broken_job:
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "boom"}}, "Query"
            )
        return self._store.subscribers(tenant_id, job_id, now)

    def disconnect(self, connection_id: str) -> int:
        return self._store.disconnect(connection_id)


@pytest.fixture
def connections(dynamodb: DynamoDBClient, table_names: dict[str, str]) -> DynamoConnectionStore:
    return DynamoConnectionStore(dynamodb, table_names["connections"])


@pytest.fixture
def settings(table_names: dict[str, str]) -> DeliverySettings:
    return DeliverySettings(
        connections_table=table_names["connections"],
        websocket_management_url=MANAGEMENT_URL,
        messages_table=table_names["messages"],
    )


def _use(monkeypatch: pytest.MonkeyPatch, context: DispatcherContext) -> None:
    monkeypatch.setattr(dispatcher, "context", lambda: context)


def _context(
    settings: DeliverySettings,
    dynamodb: DynamoDBClient,
    clock: ManualClock,
    poster: Any,
) -> DispatcherContext:
    return dispatcher_context(settings, dynamodb=dynamodb, poster=poster, clock=clock)


def _subscribe(
    connections: DynamoConnectionStore, clock: ManualClock, job: JobRecord, *ids: str
) -> None:
    for connection_id in ids:
        connections.connect(connection_id, ALICE, clock.now())
        record = connections.get(connection_id, clock.now())
        assert record is not None
        connections.subscribe(record, job.job_id, clock.now())


def _job(service: JobService) -> JobRecord:
    return service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")


def _stream(dynamodb: DynamoDBClient, table: str) -> list[Event]:
    """Every record of the table's stream so far, as Lambda hands them to the function."""
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        config=Config(account_id_endpoint_mode="disabled"),
    )
    records: list[Event] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for raw in streams.get_records(ShardIterator=iterator)["Records"]:
            record: Event = json.loads(json.dumps(raw, default=str))
            created = raw["dynamodb"].get("ApproximateCreationDateTime")
            if created is not None:
                record["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
            record["eventSourceARN"] = arn
            records.append(record)
    return records


def _inserts(records: list[Event], job: JobRecord) -> list[Event]:
    return [
        r
        for r in records
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["jobKey"]["S"].endswith(job.job_id)
    ]


def _dispatch(*records: Event) -> list[str]:
    answer = dispatcher.handler({"Records": list(records)}, LocalLambdaContext())
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def _sequence(record: Event) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _items_of(dynamodb: DynamoDBClient, table: str, connection_id: str) -> list[str]:
    page = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CONN#{connection_id}"}},
    )
    return sorted(item["sk"]["S"] for item in page["Items"])


# -- the cases ----------------------------------------------------------------------------------


def test_live_connections_get_it_gone_ones_are_removed_and_only_the_failed_record_retries(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given job A watched by three live connections, two closed ones and one that stays
    # throttled, and job B watched only by a live one
    job_a, job_b = _job(service), _job(service)
    live, dead, throttled = ["live-1", "live-2", "live-3"], ["dead-1", "dead-2"], "slow-1"
    _subscribe(connections, clock, job_a, *live, *dead, throttled)
    _subscribe(connections, clock, job_b, "live-b")
    poster = FakePoster(gone=set(dead), failing={throttled})
    _use(monkeypatch, _context(settings, dynamodb, clock, poster))
    records = _stream(dynamodb, table_names["messages"])
    (record_a,), (record_b,) = _inserts(records, job_a), _inserts(records, job_b)

    # When the dispatcher gets both messages in one batch
    failed = _dispatch(record_a, record_b)

    # Then every live subscriber has its message, exactly once
    for connection_id in live:
        assert poster.seqs(connection_id) == [(job_a.job_id, 1)]
    assert poster.seqs("live-b") == [(job_b.job_id, 1)]
    assert poster.received[live[0]][0]["type"] == "status"
    # and the closed connections are gone from the table, subscriptions and all
    connections_table = table_names["connections"]
    for connection_id in dead:
        assert _items_of(dynamodb, connections_table, connection_id) == []
    still = connections.subscribers("acme", job_a.job_id, clock.now())
    assert sorted(s.connection_id for s in still) == sorted([*live, throttled])
    # and only A's record, which a live subscriber still lacks, is handed back for a retry
    assert failed == [_sequence(record_a)]
    # and the counts users care about are published
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert emitted
    metrics = emitted[-1]
    assert metrics["MessagesDelivered"] == [3.0, 1.0]
    assert (metrics["ConnectionsGone"], metrics["DeliveryFailures"]) == ([2.0], [1.0])


def test_modify_and_remove_records_are_ignored(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a subscribed job whose first message was rewritten (MODIFY) and deleted (REMOVE,
    # as TTL deletions arrive)
    job = _job(service)
    _subscribe(connections, clock, job, "c1")
    messages = table_names["messages"]
    key = {"jobKey": {"S": f"acme#{job.job_id}"}, "seq": {"N": "1"}}
    item = dynamodb.get_item(TableName=messages, Key=key)["Item"]
    dynamodb.put_item(TableName=messages, Item=item)
    dynamodb.delete_item(TableName=messages, Key=key)
    records = _stream(dynamodb, messages)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    # and an INSERT from another table's stream
    foreign = copy.deepcopy(records[0])
    foreign["eventSourceARN"] = foreign["eventSourceARN"].replace(messages, "test-other")
    poster = FakePoster()
    _use(monkeypatch, _context(settings, dynamodb, clock, poster))

    # When they reach the dispatcher
    failed = _dispatch(records[1], records[2], foreign)

    # Then nothing is posted and nothing fails
    assert failed == []
    assert dict(poster.received) == {}


def test_a_malformed_record_fails_only_itself(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a running job with two messages, and two broken copies of a record
    job = _job(service)
    service.start(JobRef("acme", job.job_id), total=10)
    _subscribe(connections, clock, job, "c1")
    first, second = _inserts(_stream(dynamodb, table_names["messages"]), job)
    no_tenant = copy.deepcopy(first)
    del no_tenant["dynamodb"]["NewImage"]["tenantId"]
    no_tenant["dynamodb"]["SequenceNumber"] = "900"
    bad_type = copy.deepcopy(second)
    bad_type["dynamodb"]["NewImage"]["type"] = {"S": "gossip"}
    bad_type["dynamodb"]["SequenceNumber"] = "901"
    poster = FakePoster()
    _use(monkeypatch, _context(settings, dynamodb, clock, poster))

    # When they arrive in one batch
    failed = _dispatch(first, no_tenant, second, bad_type)

    # Then only the broken ones fail, and the good ones are delivered
    assert failed == ["900", "901"]
    assert poster.seqs("c1") == [(job.job_id, 1), (job.job_id, 2)]


def test_an_item_that_is_no_message_fails_with_its_reason_and_no_traceback(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an INSERT on the messages table of an item that is no message (the shape
    # `sam local generate-event dynamodb update` makes), and a record without its image
    messages = table_names["messages"]
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{messages}/stream/2015-06-27T00:48:05"
    foreign: Event = {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"Id": {"N": "101"}},
            "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
            "SequenceNumber": "4421584500000000017450439091",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": arn,
    }
    imageless = copy.deepcopy(foreign)
    del imageless["dynamodb"]["NewImage"]
    imageless["dynamodb"]["SequenceNumber"] = "4421584500000000017450439092"
    _use(monkeypatch, _context(settings, dynamodb, clock, FakePoster()))
    logged = _ErrorRecords()
    logging.getLogger(SERVICE_NAME).addHandler(logged)

    # When they reach the dispatcher
    try:
        failed = _dispatch(foreign, imageless)
    finally:
        logging.getLogger(SERVICE_NAME).removeHandler(logged)

    # Then both fail (the stream retries them, then its DLQ keeps them), each logged once with
    # what is missing, and without a traceback: a broken record is not a bug in the dispatcher
    assert failed == ["4421584500000000017450439091", "4421584500000000017450439092"]
    assert [(r.getMessage(), r.exc_info) for r in logged.records] == [
        ("unreadable stream record", None),
        ("unreadable stream record", None),
    ]
    reasons = [getattr(r, "reason", "") for r in logged.records]
    assert reasons == [
        "not a Tether message: no 'tenantId' attribute",
        "not a Tether message: no 'NewImage' attribute",
    ]


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failed_subscriber_query_fails_the_record(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two subscribed jobs, and a store that cannot list the first one's subscribers
    broken, fine = _job(service), _job(service)
    _subscribe(connections, clock, broken, "c1")
    _subscribe(connections, clock, fine, "c2")
    records = _stream(dynamodb, table_names["messages"])
    poster = FakePoster()
    context = _context(settings, dynamodb, clock, poster)
    directory = FailingDirectory(connections, broken.job_id)
    _use(monkeypatch, DispatcherContext(settings, directory, poster, clock))
    assert context.settings is settings

    # When both messages arrive
    failed = _dispatch(*_inserts(records, broken), *_inserts(records, fine))

    # Then the unreadable one is retried, the other delivered
    assert failed == [_sequence(_inserts(records, broken)[0])]
    assert poster.seqs("c2") == [(fine.job_id, 1)]
    assert "c1" not in poster.received


def test_progress_messages_reach_subscribers_in_order(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a job that started and reported progress twice
    job = _job(service)
    _subscribe(connections, clock, job, "c1")
    ref = JobRef("acme", job.job_id)
    current = service.start(ref, total=4)
    for _ in range(2):
        clock.advance(seconds=1)
        current = service.report_progress(ref, ProgressDelta(succeeded=1), current=current)
    poster = FakePoster()
    _use(monkeypatch, _context(settings, dynamodb, clock, poster))

    # When the stream's batch is dispatched
    failed = _dispatch(*_stream(dynamodb, table_names["messages"]))

    # Then the client saw every message of the log, in order, counters and all
    assert failed == []
    received = poster.received["c1"]
    assert [(m["type"], m["seq"]) for m in received] == [
        ("status", 1),
        ("status", 2),
        ("progress", 3),
        ("progress", 4),
    ]
    assert received[-1]["data"]["succeeded"] == 2


# -- the real management API client (moto), with 410 and throttling injected ----------------


class GoneException(JsonRESTError):
    code = 410

    def __init__(self) -> None:
        super().__init__("GoneException", "the connection is gone")


class LimitExceededException(JsonRESTError):
    code = 429

    def __init__(self) -> None:
        super().__init__("LimitExceededException", "too many requests")


@pytest.fixture
def management_api(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """moto's @connections stub, with "gone-*" answering 410 and "slow-*" always throttled.

    Returns how many requests each connection received (retries included); botocore's
    retry sleeps are skipped so the test does not wait for the backoff.
    """
    attempts: dict[str, int] = defaultdict(int)
    original = ApiGatewayManagementApiBackend.post_to_connection

    def post(self: ApiGatewayManagementApiBackend, data: bytes, connection_id: str) -> None:
        attempts[connection_id] += 1
        if connection_id.startswith("gone-"):
            raise GoneException()
        if connection_id.startswith("slow-"):
            raise LimitExceededException()
        original(self, data, connection_id)

    monkeypatch.setattr(ApiGatewayManagementApiBackend, "post_to_connection", post)
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)
    return attempts


def _posted(connection_id: str) -> bytes:
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    return bytes(backend.connections[connection_id].data)


def test_api_gateway_poster_maps_410_to_gone_and_delivers_otherwise(
    dynamodb: DynamoDBClient, management_api: dict[str, int]
) -> None:
    # Given the poster on boto3's management API client
    poster = ApiGatewayPoster(management_api_client(MANAGEMENT_URL))

    # When it posts to a live and to a closed connection
    delivered = poster.post("live-1", b'{"v":2}')
    gone = poster.post("gone-1", b'{"v":2}')

    # Then the live one has the bytes, the closed one is GONE after a single try
    assert (delivered, gone) == (PostOutcome.DELIVERED, PostOutcome.GONE)
    assert _posted("live-1") == b'{"v":2}'
    assert management_api["gone-1"] == 1


def test_api_gateway_poster_retries_throttling_then_raises(
    dynamodb: DynamoDBClient, management_api: dict[str, int]
) -> None:
    # Given the poster with the production retry configuration
    poster = ApiGatewayPoster(management_api_client(MANAGEMENT_URL, POSTER_CONFIG))

    # When a connection stays throttled
    with pytest.raises(ClientError) as raised:
        poster.post("slow-1", b"{}")

    # Then botocore's standard mode retried it up to max_attempts, then the error surfaced
    assert raised.value.response["Error"]["Code"] == "LimitExceededException"
    assert management_api["slow-1"] == POSTER_MAX_ATTEMPTS


def test_dispatcher_with_the_real_client_drops_gone_connections(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    connections: DynamoConnectionStore,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    management_api: dict[str, int],
) -> None:
    # Given a job watched by a live, a closed and a throttled connection, and the dispatcher
    # built from its settings alone (real poster, real store)
    job = _job(service)
    _subscribe(connections, clock, job, "live-1", "gone-1", "slow-1")
    _use(monkeypatch, dispatcher_context(settings, dynamodb=dynamodb, clock=clock))
    (record,) = _inserts(_stream(dynamodb, table_names["messages"]), job)

    # When the message is dispatched
    failed = _dispatch(record)

    # Then the live client got the envelope, the closed one is removed, and the record is
    # retried because the throttled one still lacks it
    assert json.loads(_posted("live-1"))["jobId"] == job.job_id
    assert _items_of(dynamodb, table_names["connections"], "gone-1") == []
    assert _items_of(dynamodb, table_names["connections"], "slow-1") != []
    assert failed == [_sequence(record)]


def test_the_sample_event_is_a_progress_insert_the_dispatcher_reads(
    dynamodb: DynamoDBClient,
    settings: DeliverySettings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the sample event and a dispatcher that reads any table's stream
    event = json.loads(SAMPLE_EVENT.read_text())
    open_settings = settings.model_copy(update={"messages_table": None})
    _use(monkeypatch, _context(open_settings, dynamodb, clock, FakePoster()))

    # When it is parsed and replayed (nobody subscribed)
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )

    message = dispatcher.streamed_message(DynamoDBRecord(event["Records"][0]))

    # Then it is one progress message of a tenant's job, and nothing fails
    assert message is not None
    assert (message.tenant_id, message.envelope.type.value) == ("acme", "progress")
    assert _dispatch(*event["Records"]) == []
