"""Launcher Lambda: starts scheduled, periodic and triggered jobs.

Two callers, told apart by the event's shape: EventBridge Scheduler sends the payload Tether
put on the schedule (`ScheduledLaunch`: a one-time job, or a run of a recurring schedule, with
the time it was due), and the EventBridge rule on the import bucket sends S3's `Object
Created` event (parsed with Powertools' model), which becomes a `csv_import` job. Thin: one
`Launcher` use case each. A launch whose job or schedule was deleted meanwhile, or whose job
request is refused (another tenant's import, a bucket that is not the import bucket, an event
that is no launch Tether scheduled), is logged and acknowledged, not raised: Scheduler and
EventBridge would retry it for nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.domain.errors import FieldError, InvalidRequest, JobNotFound, ScheduleNotFound
from shared.schedule_wiring import launcher
from shared.services.launcher import ImportedObject, Launched, Launcher, ScheduledLaunch

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@functools.cache
def context() -> Launcher:
    """Built at the first invocation of a cold start, from the environment."""
    return launcher()


def _answer(launched: Launched | None) -> dict[str, Any]:
    if launched is None:
        return {"launched": False}
    logger.set_correlation_id(launched.job.job_id)
    logger.info(
        "launched",
        extra={"status": launched.job.status.value, "admitted": launched.admitted},
    )
    metrics.add_metric(name="JobsLaunched", unit=MetricUnit.Count, value=1)
    return {
        "launched": True,
        "tenantId": launched.job.tenant_id,
        "jobId": launched.job.job_id,
        "status": launched.job.status.value,
        "admitted": launched.admitted,
    }


def _imported(event: dict[str, Any]) -> ImportedObject:
    parsed = S3EventNotificationEventBridgeModel.model_validate(event)
    obj = parsed.detail.object
    return ImportedObject(
        bucket=parsed.detail.bucket.name,
        key=obj.key,
        version=obj.sequencer or obj.version_id or obj.etag,
        event_time=parsed.time,
    )


def _launch(event: dict[str, Any]) -> Launched | None:
    # By source, not by the presence of `detail-type`: Scheduler's own `Scheduled Event` (a
    # schedule without Tether's input) has one too, and is no S3 event.
    try:
        if event.get("source") == "aws.s3":
            return context().import_object(_imported(event))
        launch = ScheduledLaunch.model_validate(event)
    except ValidationError as invalid:
        raise InvalidRequest(
            [FieldError(tuple(e["loc"]), e["type"], e["msg"]) for e in invalid.errors()]
        ) from None
    return context().launch(launch)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    try:
        return _answer(_launch(event))
    except (JobNotFound, ScheduleNotFound, InvalidRequest) as refused:
        logger.warning(
            "nothing to launch",
            extra={
                "code": refused.code,
                "reason": refused.message,
                "source": event.get("source"),
                "detailType": event.get("detail-type"),
            },
        )
        if isinstance(refused, InvalidRequest):
            metrics.add_metric(name="LaunchesRefused", unit=MetricUnit.Count, value=1)
        return {"launched": False, "reason": refused.code}
