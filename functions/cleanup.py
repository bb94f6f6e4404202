"""Cleanup Lambda, run by an EventBridge rule every hour.

Thin: `shared.services.cleanup.Cleanup` decides whether this invocation runs (interval, lease)
and does the sweeping; the lease owner is this invocation's request id.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.schedule_wiring import cleanup
from shared.services.cleanup import Cleanup

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@functools.cache
def context() -> Cleanup:
    """Built at the first invocation of a cold start, from the environment."""
    return cleanup()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    report = context().run(owner=lambda_context.aws_request_id)
    summary = dataclasses.asdict(report)
    logger.info("cleanup", extra=summary)
    if report.ran:
        metrics.add_metric(name="JobsPurged", unit=MetricUnit.Count, value=report.purged_jobs)
        metrics.add_metric(
            name="DeadJobsFailed", unit=MetricUnit.Count, value=len(report.failed_jobs)
        )
    return summary
