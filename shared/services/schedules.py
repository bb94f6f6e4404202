"""The schedules API's use cases: recurring schedules as a tenant's resource.

Every schedule is an item in the schedules table (what clients read: the request, state, runs)
and an EventBridge Scheduler schedule targeting the launcher (what fires). Authorization is the
jobs API's: a user token with `jobs:read` / `jobs:write` (resume tokens reach one job, never a
schedule), the per-tenant write rate, and another tenant's schedule answers 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from shared.domain.auth import Principal, Scope
from shared.domain.clock import Clock
from shared.domain.errors import Forbidden, InvalidExpression, RateLimited
from shared.domain.schedules import (
    ScheduleRecord,
    ScheduleRequest,
    ScheduleState,
    ScheduleView,
)
from shared.services.api import RateLimiter
from shared.services.launcher import Launched, Launcher, schedule_entry, schedule_name
from shared.services.ports import SchedulerGateway, ScheduleStore

MAX_LISTED: Final = 100
# EventBridge Scheduler refuses a StartDate earlier than five minutes ago.
START_AT_GRACE: Final = timedelta(minutes=5)
MAX_UPDATE_ATTEMPTS: Final = 20


def random_schedule_id() -> str:
    return f"s_{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class SchedulesApi:
    store: ScheduleStore
    scheduler: SchedulerGateway
    launcher: Launcher
    limiter: RateLimiter
    clock: Clock
    new_id: Callable[[], str] = random_schedule_id

    # -- authorization ----------------------------------------------------------------------

    def _reader(self, principal: Principal) -> None:
        if principal.is_resume:
            raise Forbidden(Scope.JOBS_READ.value)
        principal.require(Scope.JOBS_READ)

    def _writer(self, principal: Principal) -> None:
        if principal.is_resume:
            raise Forbidden(Scope.JOBS_WRITE.value)
        principal.require(Scope.JOBS_WRITE)
        decision = self.limiter.hit(principal.tenant_id, "write", self.clock.now())
        if not decision.allowed:
            raise RateLimited(decision.retry_after_seconds)

    # -- use cases --------------------------------------------------------------------------

    def create(self, principal: Principal, request: ScheduleRequest) -> ScheduleView:
        self._writer(principal)
        request.validated()
        self.launcher.catalog.check(request.job, principal.tenant_id, loc=("body", "job"))
        now = self.clock.now()
        if request.start_at is not None and request.start_at < now - START_AT_GRACE:
            raise InvalidExpression("startAt cannot lie more than 5 minutes in the past")
        if request.end_at is not None and request.end_at <= now:
            raise InvalidExpression("endAt must lie in the future")
        schedule = ScheduleRecord(
            schedule_id=self.new_id(),
            tenant_id=principal.tenant_id,
            owner_id=principal.subject,
            name=request.name,
            expression=request.expression.strip(),
            timezone=request.timezone,
            start_at=request.start_at,
            end_at=request.end_at,
            job=request.job,
            state=ScheduleState.ENABLED,
            created_at=now,
            updated_at=now,
        )
        self.store.insert(schedule)
        try:
            self.scheduler.put(schedule_entry(schedule))
        except Exception:
            self.store.delete(schedule.tenant_id, schedule.schedule_id)
            raise
        return schedule.view(now)

    def list(
        self, principal: Principal, *, limit: int = MAX_LISTED, cursor: str | None = None
    ) -> tuple[list[ScheduleView], str | None]:
        self._reader(principal)
        now = self.clock.now()
        page, next_cursor = self.store.list(
            principal.tenant_id, limit=max(1, min(limit, MAX_LISTED)), cursor=cursor
        )
        return [s.view(now) for s in page], next_cursor

    def get(self, principal: Principal, schedule_id: str) -> ScheduleView:
        self._reader(principal)
        return self.store.get(principal.tenant_id, schedule_id).view(self.clock.now())

    def set_state(
        self, principal: Principal, schedule_id: str, state: ScheduleState
    ) -> ScheduleView:
        """Pause or resume (idempotent): the item and the Scheduler schedule follow."""
        self._writer(principal)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            schedule = self.store.get(principal.tenant_id, schedule_id)
            if schedule.state is state:
                break
            updated = schedule.model_copy(
                update={
                    "state": state,
                    "updated_at": self.clock.now(),
                    "version": schedule.version + 1,
                }
            )
            if self.store.replace(updated):
                schedule = updated
                break
        else:
            raise RuntimeError(f"schedule {schedule_id}: too many concurrent updates")
        self.scheduler.set_enabled(
            schedule_name(schedule_id), enabled=state is ScheduleState.ENABLED
        )
        return schedule.view(self.clock.now())

    def run_now(self, principal: Principal, schedule_id: str) -> Launched:
        """Start one run at once (paused or not), recorded among the schedule's runs."""
        self._writer(principal)
        self.store.get(principal.tenant_id, schedule_id)  # 404 before anything happens
        return self.launcher.run_schedule(principal.tenant_id, schedule_id)

    def delete(self, principal: Principal, schedule_id: str) -> None:
        self._writer(principal)
        self.store.get(principal.tenant_id, schedule_id)
        self.scheduler.delete(schedule_name(schedule_id))
        self.store.delete(principal.tenant_id, schedule_id)
