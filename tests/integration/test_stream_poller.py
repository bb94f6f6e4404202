"""The local stream poller treats the dispatcher as Lambda's DynamoDB event source does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config

from infra.local import moto_patches
from infra.local.poller import PollerOptions, StreamPoller

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FAST = PollerOptions(
    retry_attempts=2,
    idle_seconds=0.005,
    first_backoff_seconds=0.005,
    starting_position="TRIM_HORIZON",
)


class Dispatcher:
    """A stand-in dispatcher: records each batch (by the items' seq) and fails as told."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail: Callable[[int, int], bool] = lambda _seq, _call: False
        self.raise_on_call: int | None = None
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        records = event["Records"]
        with self._lock:
            call = len(self.batches)
            self.batches.append([_item_seq(r) for r in records])
        for record in records:  # Lambda's JSON shape, not boto3's parsed one
            assert record["eventSourceARN"].startswith("arn:aws:dynamodb:")
            assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        if self.raise_on_call == call:
            raise RuntimeError("the dispatcher crashed")
        failures = [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in records
            if self.fail(_item_seq(r), call)
        ]
        return {"batchItemFailures": failures}

    def delivered(self) -> list[int]:
        with self._lock:
            return [seq for batch in self.batches for seq in batch]


def _item_seq(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["Keys"]["seq"]["N"])


@pytest.fixture
def stream(dynamodb: DynamoDBClient, table_names: dict[str, str]) -> tuple[Any, str]:
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        config=Config(account_id_endpoint_mode="disabled"),
    )
    arn = dynamodb.describe_table(TableName=table_names["messages"])["Table"]["LatestStreamArn"]
    return streams, arn


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher()


@pytest.fixture
def poller(stream: tuple[Any, str], dispatcher: Dispatcher) -> Iterator[StreamPoller]:
    streams, arn = stream
    poller = StreamPoller(streams, arn, dispatcher, FAST)
    yield poller
    poller.stop()


def _write(dynamodb: DynamoDBClient, table: str, *seqs: int) -> None:
    for seq in seqs:
        dynamodb.put_item(TableName=table, Item={"jobKey": {"S": "t#j"}, "seq": {"N": str(seq)}})


def _eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_a_failed_record_is_retried_with_every_record_after_it_and_none_before(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    poller: StreamPoller,
    dispatcher: Dispatcher,
) -> None:
    # Given five new messages, the third of which fails once
    _write(dynamodb, table_names["messages"], 1, 2, 3, 4, 5)
    dispatcher.fail = lambda seq, call: seq == 3 and call == 0

    # When the poller runs
    poller.start()
    _eventually(lambda: len(dispatcher.batches) >= 2)
    poller.stop()

    # Then the retry starts at the failed record (Lambda's checkpoint), and nothing is lost
    assert dispatcher.batches == [[1, 2, 3, 4, 5], [3, 4, 5]]
    assert poller.dropped_records == 0


def test_a_crashed_dispatcher_gets_the_whole_batch_again(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    poller: StreamPoller,
    dispatcher: Dispatcher,
) -> None:
    _write(dynamodb, table_names["messages"], 1, 2)
    dispatcher.raise_on_call = 0

    poller.start()
    _eventually(lambda: len(dispatcher.batches) >= 2)
    poller.stop()

    assert dispatcher.batches == [[1, 2], [1, 2]]


def test_a_record_that_keeps_failing_is_dropped_after_the_retries_and_the_stream_moves_on(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    poller: StreamPoller,
    dispatcher: Dispatcher,
) -> None:
    # Given a poison record
    _write(dynamodb, table_names["messages"], 1, 2, 3)
    dispatcher.fail = lambda seq, _call: seq == 2

    # When it fails on every try
    poller.start()
    _eventually(lambda: poller.dropped_records > 0)
    _write(dynamodb, table_names["messages"], 4)
    _eventually(lambda: 4 in dispatcher.delivered())
    poller.stop()

    # Then after the first try and two retries it and those after it are dropped (the cloud's
    # DLQ), and later records flow again
    assert dispatcher.batches == [[1, 2, 3], [2, 3], [2, 3], [4]]
    assert poller.dropped_records == 2


def test_a_stopped_poller_goes_on_after_its_checkpoint(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    poller: StreamPoller,
    dispatcher: Dispatcher,
) -> None:
    messages = table_names["messages"]
    _write(dynamodb, messages, 1, 2)
    poller.start()
    _eventually(lambda: dispatcher.delivered() == [1, 2])

    # When it stops while messages keep coming, then starts again
    poller.stop()
    _write(dynamodb, messages, 3, 4, 5)
    poller.start()
    _eventually(lambda: len(dispatcher.delivered()) >= 5)
    poller.stop()

    # Then it delivers exactly what came while it was stopped
    assert dispatcher.delivered() == [1, 2, 3, 4, 5]


def test_only_inserts_reach_the_dispatcher(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    poller: StreamPoller,
    dispatcher: Dispatcher,
) -> None:
    messages = table_names["messages"]
    _write(dynamodb, messages, 1)
    dynamodb.delete_item(TableName=messages, Key={"jobKey": {"S": "t#j"}, "seq": {"N": "1"}})
    _write(dynamodb, messages, 2)

    poller.start()
    _eventually(lambda: 2 in dispatcher.delivered())
    poller.stop()

    assert dispatcher.batches == [[1, 2]]


def test_with_a_wakeup_an_idle_poller_reads_as_soon_as_a_record_is_appended(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    stream: tuple[Any, str],
    dispatcher: Dispatcher,
) -> None:
    # Given a poller that, without news, would not read again for a minute
    streams, arn = stream
    patient = PollerOptions(idle_seconds=60, wakeup_timeout_seconds=60)
    poller = StreamPoller(streams, arn, dispatcher, patient, wakeup=moto_patches.stream_activity())
    poller.start()
    try:
        # When a message is written after it went idle
        time.sleep(0.05)
        _write(dynamodb, table_names["messages"], 1)

        # Then moto's announcement wakes it (well within the minute), and stop() does too
        _eventually(lambda: dispatcher.delivered() == [1])
    finally:
        poller.stop()
    assert not poller.running
