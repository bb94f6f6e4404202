"""The local event source mapping: the messages table's stream → the dispatcher, as Lambda does.

Lambda's DynamoDB event source, reduced to what Tether relies on (infra/cloud/websocket_api.py
configures the cloud one): records are read in order from the stream, only `INSERT`s are
passed on (the cloud filter), in batches of up to 100, in Lambda's event shape. The dispatcher
answers with a partial batch response; the poller then keeps its position just before the
first failed record and retries from there (the failed record and every one after it) with
backoff, up to 5 retries, after which the records are dropped and logged, as the cloud sends
them to the DLQ. A stopped poller remembers its checkpoint: started again, it goes on after the
last record it finished, so stopping it mid-job loses nothing.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger

from infra.local.events import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

BATCH_SIZE: Final = 100  # the cloud's DISPATCH_BATCH_SIZE
RETRY_ATTEMPTS: Final = 5  # the cloud's DISPATCH_RETRY_ATTEMPTS
IDLE_POLL_SECONDS: Final = 0.02
MAX_BACKOFF_SECONDS: Final = 2.0

logger = Logger(service="tether-local")


class Wakeup(Protocol):
    """Tells an idle poller when the stream may have news (see moto_patches.StreamActivity)."""

    def generation(self) -> int: ...
    def notify(self) -> None: ...
    def wait(self, seen: int, timeout: float) -> None: ...


@dataclass(frozen=True)
class PollerOptions:
    batch_size: int = BATCH_SIZE
    retry_attempts: int = RETRY_ATTEMPTS
    idle_seconds: float = IDLE_POLL_SECONDS  # between empty reads, without a wakeup
    wakeup_timeout_seconds: float = 1.0  # with one: read again at least this often
    first_backoff_seconds: float = 0.1
    starting_position: str = "LATEST"  # before the first checkpoint, as the cloud mapping


class StreamPoller:
    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        options: PollerOptions | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._wakeup = wakeup
        self._streams = streams
        self._stream_arn = stream_arn
        self._handler = handler
        self._options = options or PollerOptions()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checkpoint: str | None = None
        self._position_lock = threading.Lock()
        self.delivered_batches = 0
        self.dropped_records = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def checkpoint(self) -> str | None:
        """The sequence number of the last record the dispatcher finished (or skipped)."""
        with self._position_lock:
            return self._checkpoint

    def start(self) -> None:
        if self.running:
            return
        # Pin the position now: LATEST means "from this moment", not from when the thread runs.
        iterator = self._iterator()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(iterator,), name="tether-stream-poller", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._wakeup is not None:
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- the loop ---------------------------------------------------------------------------

    def _iterator(self) -> str:
        description = self._streams.describe_stream(StreamArn=self._stream_arn)
        shard_id = description["StreamDescription"]["Shards"][0]["ShardId"]
        checkpoint = self.checkpoint
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
            if checkpoint is not None
            else {"ShardIteratorType": self._options.starting_position}
        )
        answer = self._streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=shard_id, **position
        )
        return str(answer["ShardIterator"])

    def _run(self, first: str) -> None:
        iterator: str | None = first
        pending: list[dict[str, Any]] = []
        attempts = 0
        while not self._stop.is_set():
            try:
                if iterator is None:
                    iterator = self._iterator()  # from the checkpoint again
                if not pending:
                    seen = self._wakeup.generation() if self._wakeup is not None else 0
                    answer = self._streams.get_records(
                        ShardIterator=iterator, Limit=self._options.batch_size
                    )
                    if not answer["Records"]:
                        self._idle(seen)
                        continue  # the same iterator: moto keeps every one it hands out
                    iterator = answer["NextShardIterator"]
                    pending = [self._lambda_record(r) for r in answer["Records"]]
                pending, attempts = self._dispatch(pending, attempts)
            except Exception:
                if self._stop.is_set():
                    break
                logger.exception("stream poll failed; reading again from the checkpoint")
                iterator, pending, attempts = None, [], 0
                self._stop.wait(MAX_BACKOFF_SECONDS)
            if pending:
                backoff = self._options.first_backoff_seconds * 2 ** (attempts - 1)
                self._stop.wait(min(backoff, MAX_BACKOFF_SECONDS))

    def _idle(self, seen: int) -> None:
        if self._wakeup is None:
            self._stop.wait(self._options.idle_seconds)
        else:
            self._wakeup.wait(seen, self._options.wakeup_timeout_seconds)

    def _dispatch(
        self, pending: list[dict[str, Any]], attempts: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Invoke the dispatcher on the INSERTs; what is left to retry, and the retry count."""
        inserts = [record for record in pending if record["eventName"] == "INSERT"]
        failed_at = self._invoke(inserts) if inserts else None
        if failed_at is None:
            self._advance(pending[-1])
            self.delivered_batches += 1 if inserts else 0
            return [], 0
        index = next(i for i, r in enumerate(pending) if _seq(r) == failed_at)
        if index > 0:
            self._advance(pending[index - 1])
        retry = pending[index:]
        if attempts + 1 > self._options.retry_attempts:
            logger.error(
                "records dropped after retries (the cloud sends them to the DLQ)",
                extra={"first": _seq(retry[0]), "last": _seq(retry[-1]), "count": len(retry)},
            )
            self.dropped_records += len(retry)
            self._advance(retry[-1])
            return [], 0
        return retry, attempts + 1

    def _invoke(self, batch: list[dict[str, Any]]) -> str | None:
        """The sequence number of the first record to retry, or None when all went through."""
        context = LocalLambdaContext(function_name="tether-dispatcher")
        try:
            answer = self._handler({"Records": batch}, context)
        except Exception:
            logger.exception("dispatcher failed the whole batch")
            return _seq(batch[0])
        failures = (answer or {}).get("batchItemFailures") or []
        if not failures:
            return None
        known = {_seq(record) for record in batch}
        identifiers = [str(f.get("itemIdentifier")) for f in failures]
        if any(i not in known for i in identifiers):
            return _seq(batch[0])  # Lambda: an unknown identifier fails the whole batch
        return min(identifiers, key=int)

    def _advance(self, record: dict[str, Any]) -> None:
        with self._position_lock:
            self._checkpoint = _seq(record)

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record as boto3 parsed it, back in the JSON shape Lambda delivers."""
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        for image in ("Keys", "NewImage", "OldImage"):
            if image in stream:
                stream[image] = _json_attributes(stream[image])
        return {**record, "dynamodb": stream, "eventSourceARN": self._stream_arn}


def _seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _json_attributes(value: Any) -> Any:
    """Binary attribute values as base64 text, as in Lambda's JSON event."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: _json_attributes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_attributes(item) for item in value]
    return value
