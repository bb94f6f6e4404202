"""Live delivery: one persisted message to every connection subscribed to its job.

The dispatcher calls `deliver` for each new message of the log. Posts run in parallel on a
bounded pool, so one slow or failing client costs one worker, never the others' delivery.
A connection that answers 410 Gone is removed with its subscriptions. A connection that still
fails after the poster's retries is reported, not raised: the caller decides (the dispatcher
lets the stream retry the record; clients drop the seqs they already have).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context, copy_context
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from shared.domain.envelope import Envelope
from shared.services.ports import ConnectionPoster, PostOutcome

DEFAULT_MAX_PARALLEL = 16


class Subscription(Protocol):
    @property
    def connection_id(self) -> str: ...


class SubscriberDirectory(Protocol):
    """Who listens to a job, and how to forget a dead connection (the connections store)."""

    def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> Sequence[Subscription]:
        """The job's live subscriptions (unexpired); raises when they cannot be read."""
        ...

    def disconnect(self, connection_id: str) -> int:
        """Remove the connection and all its subscriptions."""
        ...


class _Result(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    GONE_NOT_REMOVED = "gone_not_removed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int
    gone: int
    failed_connections: tuple[str, ...] = ()
    not_removed: tuple[str, ...] = ()
    """Gone connections whose removal failed; TTL and cleanup take them, the next post retries."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Why each failed or not-removed connection failed (error type and code, never payloads)."""

    @property
    def complete(self) -> bool:
        """Every live subscriber has the message."""
        return not self.failed_connections


def deliver(
    message: Envelope,
    tenant_id: str,
    *,
    connections: SubscriberDirectory,
    poster: ConnectionPoster,
    now: datetime,
    max_parallel: int = DEFAULT_MAX_PARALLEL,
) -> DeliveryReport:
    """Post `message` to the job's live subscribers; raises only if they cannot be listed."""
    if message.job_id is None:
        raise ValueError("only a job's messages are delivered to its subscribers")
    subscribers = connections.subscribers(tenant_id, message.job_id, now)
    connection_ids = list(dict.fromkeys(s.connection_id for s in subscribers))
    if not connection_ids:
        return DeliveryReport(delivered=0, gone=0)
    frame = message.to_json().encode()

    def send(connection_id: str) -> tuple[_Result, str | None]:
        return _post_one(connection_id, frame, connections=connections, poster=poster)

    def send_in_context(connection_id: str, context: Context) -> tuple[_Result, str | None]:
        return context.run(send, connection_id)

    workers = max(1, min(max_parallel, len(connection_ids)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        # Each post runs in a copy of the caller's context (a worker thread starts with an
        # empty one): context variables set for the invocation, such as the entry point the
        # tests attribute AWS calls to, hold for its posts too.
        contexts = [copy_context() for _ in connection_ids]
        posted = pool.map(send_in_context, connection_ids, contexts)
        results = dict(zip(connection_ids, posted, strict=True))
    return _report(results)


def _post_one(
    connection_id: str,
    frame: bytes,
    *,
    connections: SubscriberDirectory,
    poster: ConnectionPoster,
) -> tuple[_Result, str | None]:
    # Runs in a worker: every error stays here, so one connection never stops the others.
    try:
        outcome = poster.post(connection_id, frame)
    except Exception as error:  # reported per connection, never swallowed
        return _Result.FAILED, _describe(error)
    if outcome is PostOutcome.DELIVERED:
        return _Result.DELIVERED, None
    try:
        connections.disconnect(connection_id)
    except Exception as error:  # the message itself was handled
        return _Result.GONE_NOT_REMOVED, _describe(error)
    return _Result.GONE, None


def _describe(error: Exception) -> str:
    # The exception's text, not its arguments: botocore's names the operation and error code.
    return f"{type(error).__name__}: {error}"


def _report(results: dict[str, tuple[_Result, str | None]]) -> DeliveryReport:
    def having(*kinds: _Result) -> tuple[str, ...]:
        return tuple(cid for cid, (result, _) in results.items() if result in kinds)

    return DeliveryReport(
        delivered=len(having(_Result.DELIVERED)),
        gone=len(having(_Result.GONE, _Result.GONE_NOT_REMOVED)),
        failed_connections=having(_Result.FAILED),
        not_removed=having(_Result.GONE_NOT_REMOVED),
        errors={cid: error for cid, (_, error) in results.items() if error is not None},
    )
