"""The local stack's ticker (docs/local-stack.md): fires due EventBridge Scheduler schedules and the
hourly cleanup rule, because moto stores schedules but fires nothing.

Each `tick(now)` reads Tether's schedule group from (moto's) Scheduler through boto3, computes
the runs due since the previous tick with the same expression code the HTTP API validates with
(`shared.domain.expressions`), and invokes the launcher handler in process with the schedule's
target input, Scheduler's `<aws.scheduler.scheduled-time>` filled in as Scheduler would. A
one-time `at(...)` schedule that ran is deleted (`ActionAfterCompletion=DELETE`); one that was
due while the ticker was down still runs, as AWS would have run it. Disabled schedules do not
run. The cleanup handler runs every `cleanup_every` from the ticker's start, like the rule.

Plugging it into `tether dev`:

    ticker = Ticker(
        scheduler=boto3.client("scheduler", endpoint_url=aws.endpoint_url, ...),
        group=settings.scheduler_group,
        launch=functions.launcher.handler,
        cleanup=functions.cleanup.handler,
        clock=SystemClock(),
    ).start()          # a daemon thread ticking every `period_seconds`
    ...
    ticker.stop()

The clock is injected: tests drive `tick(now)` through a simulated day without sleeping.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aws_lambda_powertools import Logger

from infra.local.events import LocalLambdaContext
from shared.adapters.scheduler import SCHEDULED_TIME, EventBridgeScheduler
from shared.constants import SERVICE_NAME
from shared.domain import expressions
from shared.domain.clock import Clock
from shared.domain.models import utc_iso

Handler = Callable[[dict[str, Any], Any], Any]
logger = Logger(service=SERVICE_NAME, child=True)

CLEANUP_EXPRESSION: Final = "rate(1 hour)"
# A clock that jumped days ahead must not fire a rate(1 minute) schedule thousands of times.
MAX_RUNS_PER_TICK: Final = 100


@dataclass(frozen=True, slots=True)
class Fired:
    """One invocation the ticker made: which schedule (or `cleanup`), due when, answer."""

    name: str
    due: datetime
    answer: Any


class Ticker:
    def __init__(
        self,
        *,
        scheduler: Any,
        group: str,
        launch: Handler,
        clock: Clock,
        cleanup: Handler | None = None,
        cleanup_every: str = CLEANUP_EXPRESSION,
        period_seconds: float = 1.0,
    ) -> None:
        # `scheduler` is a boto3 "scheduler" client (moto's, in the local stack).
        self._scheduler = scheduler
        self._group = group
        self._launch = launch
        self._cleanup = cleanup
        self._cleanup_rate = expressions.parse(cleanup_every)
        self._clock = clock
        self._period = period_seconds
        self._started_at = clock.now()
        self._last = self._started_at
        self._first_seen: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------------------------

    def start(self) -> Ticker:
        # The cloud's group comes from CDK; locally nobody else creates it.
        EventBridgeScheduler(
            self._scheduler, group=self._group, target_arn="", role_arn=""
        ).ensure_group()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tether-ticker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.tick(self._clock.now())
            except Exception:
                logger.exception("ticker: tick failed")

    # -- one tick ---------------------------------------------------------------------------

    def tick(self, now: datetime) -> list[Fired]:
        """Fire every run due in (previous tick, now]; what was fired, in order."""
        with self._lock:
            since, self._last = self._last, max(self._last, now)
            if now <= since:
                return []  # the clock moved back: nothing is due twice
            fired: list[Fired] = []
            for schedule in self._schedules():
                fired.extend(self._fire_schedule(schedule, since, now))
            fired.extend(self._fire_cleanup(since, now))
            return sorted(fired, key=lambda f: f.due)

    def _schedules(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        paginator = self._scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(GroupName=self._group):
            for entry in page.get("Schedules", []):
                found.append(
                    self._scheduler.get_schedule(GroupName=self._group, Name=entry["Name"])
                )
        return found

    def _fire_schedule(
        self, schedule: dict[str, Any], since: datetime, now: datetime
    ) -> list[Fired]:
        name = schedule["Name"]
        first_seen = self._first_seen.setdefault(name, since)
        if schedule.get("State") != "ENABLED":
            return []
        try:
            expression = expressions.parse(schedule["ScheduleExpression"])
            tz = expressions.zone(schedule.get("ScheduleExpressionTimezone") or "UTC")
        except Exception:
            logger.warning("ticker: schedule with an invalid expression", extra={"name": name})
            return []
        start = _aware(schedule.get("StartDate"))
        end = _aware(schedule.get("EndDate"))
        if isinstance(expression, expressions.At):
            due_at = expression.moment.replace(tzinfo=tz).astimezone(UTC)
            runs = [due_at] if due_at <= now else []  # overdue too: it has not run yet
        else:
            anchor = start or first_seen
            after = since if start is not None else max(since, first_seen)
            runs = expressions.runs_between(
                expression, after=after, until=now, tz=tz, anchor=anchor, end=end
            )[-MAX_RUNS_PER_TICK:]
        fired = [Fired(name, due, self._invoke(schedule, due)) for due in runs]
        if fired and schedule.get("ActionAfterCompletion") == "DELETE":
            self._scheduler.delete_schedule(GroupName=self._group, Name=name)
        return fired

    def _invoke(self, schedule: dict[str, Any], due: datetime) -> Any:
        raw = schedule["Target"].get("Input") or "{}"
        event = json.loads(raw.replace(SCHEDULED_TIME, utc_iso(due)))
        try:
            return self._launch(event, LocalLambdaContext(function_name="tether-launcher"))
        except Exception as exc:  # AWS would retry; the local ticker logs and goes on
            logger.exception("ticker: launch failed", extra={"schedule": schedule["Name"]})
            return {"error": type(exc).__name__}

    def _fire_cleanup(self, since: datetime, now: datetime) -> list[Fired]:
        if self._cleanup is None:
            return []
        runs = expressions.runs_between(
            self._cleanup_rate,
            after=since,
            until=now,
            tz=expressions.zone("UTC"),
            anchor=self._started_at,
        )
        if not runs:
            return []
        due = runs[-1]  # a rule that missed several hours runs once, as EventBridge would
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": utc_iso(due),
            "detail": {},
        }
        context = LocalLambdaContext(function_name="tether-cleanup")
        return [Fired("cleanup", due, self._cleanup(event, context))]


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)
