"""Dispatcher Lambda: the messages table's stream → live WebSocket clients.

Thin: Powertools' BatchProcessor walks the stream batch; each INSERT of a message is turned back
into its envelope and tenant and handed to `shared.services.delivery.deliver`. MODIFY and REMOVE
(TTL deletions arrive as REMOVE) are not news and are skipped. A record is reported failed
(partial batch response, so the stream retries it) only when its subscribers could not be read,
a connection still failed after the poster's retries, or the record cannot be read at all.
A retried record reaches everyone again; clients drop seqs they already have.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.adapters.dynamo_codec import from_attribute_map
from shared.adapters.dynamo_jobs import message_from_item
from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.delivery_wiring import DeliverySettings, DispatcherContext, dispatcher_context
from shared.domain.envelope import Envelope
from shared.services.delivery import DeliveryReport, deliver

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
# With every record failed the response lists them all, which retries the same as raising,
# but keeps one shape of answer (and no BatchProcessingError noise in the logs).
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


class UnreadableRecord(ValueError):
    """A record on the messages table that is no Tether message: retried, then the DLQ's."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a Tether message: {reason}")


class UndeliveredMessage(Exception):
    """Some live subscriber did not get the message; the stream retries the record."""

    def __init__(self, job_id: str, seq: int | None, connections: int) -> None:
        super().__init__(f"job {job_id} seq {seq}: {connections} connection(s) failed")


@dataclass(frozen=True, slots=True)
class StreamedMessage:
    tenant_id: str
    envelope: Envelope


@functools.cache
def context() -> DispatcherContext:
    """Built at the first record of a cold start, from the environment."""
    return dispatcher_context(DeliverySettings())


def streamed_message(record: DynamoDBRecord) -> StreamedMessage | None:
    """The message a stream record announces, or None for records that are not new messages."""
    if record.event_name is not DynamoDBRecordEventName.INSERT:
        return None
    table = context().settings.messages_table
    source = record.event_source_arn
    if table and source and f":table/{table}/stream/" not in source:
        return None
    try:
        # The image is in DynamoDB's attribute-value form, exactly what the job store wrote.
        image: dict[str, Any] = record.raw_event["dynamodb"]["NewImage"]
        tenant_id = from_attribute_map({"tenantId": image["tenantId"]})["tenantId"]
        envelope = message_from_item(image)
    except KeyError as missing:
        raise UnreadableRecord(f"no {missing} attribute") from None
    except ValidationError as invalid:
        raise UnreadableRecord(_described(invalid)) from None
    return StreamedMessage(tenant_id=str(tenant_id), envelope=envelope)


def _described(invalid: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in invalid.errors()
    )


def record_handler(record: DynamoDBRecord) -> None:
    try:
        message = streamed_message(record)
    except UnreadableRecord as unreadable:
        # The record's own fault, not the dispatcher's: its reason, not a traceback.
        metrics.add_metric(name="DeliveryFailures", unit=MetricUnit.Count, value=1)
        logger.error(
            "unreadable stream record",
            extra={"eventID": record.event_id, "reason": str(unreadable)},
        )
        raise
    except Exception:
        metrics.add_metric(name="DeliveryFailures", unit=MetricUnit.Count, value=1)
        logger.exception("stream record not read", extra={"eventID": record.event_id})
        raise
    if message is None:
        logger.debug("record skipped", extra={"eventName": record.get("eventName")})
        return
    envelope = message.envelope
    logger.set_correlation_id(envelope.job_id)
    logger.append_keys(jobId=envelope.job_id, seq=envelope.seq, messageType=envelope.type.value)
    try:
        _deliver(message)
    finally:
        logger.remove_keys(["jobId", "seq", "messageType"])
        logger.set_correlation_id(None)


def _deliver(message: StreamedMessage) -> DeliveryReport:
    ctx = context()
    envelope = message.envelope
    try:
        report = deliver(
            envelope,
            message.tenant_id,
            connections=ctx.connections,
            poster=ctx.poster,
            now=ctx.clock.now(),
            max_parallel=ctx.max_parallel,
        )
    except Exception:
        metrics.add_metric(name="DeliveryFailures", unit=MetricUnit.Count, value=1)
        logger.exception("subscribers could not be read; the stream will retry")
        raise
    _record(report)
    if report.failed_connections:
        raise UndeliveredMessage(
            envelope.job_id or "", envelope.seq, len(report.failed_connections)
        )
    return report


def _record(report: DeliveryReport) -> None:
    if report.delivered:
        metrics.add_metric(name="MessagesDelivered", unit=MetricUnit.Count, value=report.delivered)
    if report.gone:
        metrics.add_metric(name="ConnectionsGone", unit=MetricUnit.Count, value=report.gone)
    failed = len(report.failed_connections)
    if failed:
        metrics.add_metric(name="DeliveryFailures", unit=MetricUnit.Count, value=failed)
    logger.info(
        "delivery finished",
        extra={
            "delivered": report.delivered,
            "gone": report.gone,
            "failed": failed,
            "errors": dict(report.errors),
        },
    )
    if report.not_removed:
        logger.warning(
            "gone connections left in the table", extra={"connections": list(report.not_removed)}
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=lambda_context
    )
