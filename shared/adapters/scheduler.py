"""EventBridge Scheduler: Tether's schedules, all in one group, all targeting the launcher.

Each schedule invokes the launcher Lambda with a JSON payload naming what to launch and, via
Scheduler's context attribute, the time the run was due (`scheduledTime`), from which the
launcher derives the run's job id (a retried invocation finds the same job). One-time `at(...)`
schedules delete themselves after they ran (`ActionAfterCompletion=DELETE`).

Every target carries an explicit retry policy (a launch is idempotent: Scheduler may retry it
for an hour) and, in the cloud, a dead-letter queue: an invocation Scheduler gives up on lands
there instead of vanishing, and the queue's depth alarms.

`update_schedule` replaces a whole schedule, so enabling or disabling one rewrites it from
what `get_schedule` returned.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from shared import constants as c
from shared.services.ports import SchedulerEntry

# Filled in by Scheduler on every invocation (templated targets' context attributes).
SCHEDULED_TIME: Final = "<aws.scheduler.scheduled-time>"
_COPIED_ON_UPDATE: Final = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "StartDate",
    "EndDate",
    "Description",
    "ActionAfterCompletion",
)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class EventBridgeScheduler:
    """`shared.services.ports.SchedulerGateway` on AWS EventBridge Scheduler."""

    def __init__(
        self,
        client: Any,
        *,
        group: str,
        target_arn: str,
        role_arn: str,
        dead_letter_arn: str | None = None,
    ) -> None:
        # `client` is a boto3 "scheduler" client (no type stubs for it in the project).
        self._client = client
        self._group = group
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._dead_letter_arn = dead_letter_arn  # None: the local stack, which has no DLQ

    def ensure_group(self) -> None:
        """Create the schedule group if it is missing (the local stack; CDK creates it)."""
        try:
            self._client.get_schedule_group(Name=self._group)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            self._client.create_schedule_group(Name=self._group)

    def put(self, entry: SchedulerEntry) -> None:
        request = self._request(entry)
        try:
            self._client.create_schedule(**request)
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            self._client.update_schedule(**request)

    def set_enabled(self, name: str, enabled: bool) -> None:
        current = self._client.get_schedule(GroupName=self._group, Name=name)
        request = {key: current[key] for key in _COPIED_ON_UPDATE if current.get(key) is not None}
        request.update(GroupName=self._group, Name=name, State=_state(enabled))
        self._client.update_schedule(**request)

    def delete(self, name: str) -> None:
        try:
            self._client.delete_schedule(GroupName=self._group, Name=name)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise

    def _request(self, entry: SchedulerEntry) -> dict[str, Any]:
        payload = {**entry.payload, "scheduledTime": SCHEDULED_TIME}
        request: dict[str, Any] = {
            "GroupName": self._group,
            "Name": entry.name,
            "ScheduleExpression": entry.expression,
            "ScheduleExpressionTimezone": entry.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": _state(entry.enabled),
            "Target": self._target(payload),
        }
        if entry.start_at is not None:
            request["StartDate"] = _aware(entry.start_at)
        if entry.end_at is not None:
            request["EndDate"] = _aware(entry.end_at)
        if entry.one_time:
            request["ActionAfterCompletion"] = "DELETE"
        return request

    def _target(self, payload: dict[str, Any]) -> dict[str, Any]:
        target: dict[str, Any] = {
            "Arn": self._target_arn,
            "RoleArn": self._role_arn,
            "Input": json.dumps(payload, separators=(",", ":")),
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": c.SCHEDULER_MAX_EVENT_AGE_SECONDS,
                "MaximumRetryAttempts": c.SCHEDULER_MAX_RETRY_ATTEMPTS,
            },
        }
        if self._dead_letter_arn is not None:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        return target


def _state(enabled: bool) -> str:
    return "ENABLED" if enabled else "DISABLED"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule dates must be timezone-aware")
    return moment
