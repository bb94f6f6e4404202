"""The HTTP API's use cases (docs/http-api.md): each takes the verified principal, then acts.

Authorization happens here, once for every route: reach first (a resume token sees one job,
everything else is "not found"), then scope (403), then the per-tenant write rate (429). The
route functions in `functions/http_api.py` only parse and shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.api.schemas import JobCreated, JobList, MessageList
from shared.domain.auth import Principal, Scope
from shared.domain.clock import Clock
from shared.domain.errors import Forbidden, RateLimited
from shared.domain.models import JobRequest, JobState, JobStatus
from shared.jobs.registry import JobCatalog
from shared.services.auth import ResumeTokens
from shared.services.jobs import JobRef, JobService
from shared.services.launcher import job_entry, job_schedule_name
from shared.services.ports import JobFilter, SchedulerGateway
from shared.services.runner import JobRunner

ControlAction = Literal["cancel", "pause", "resume"]


class RateDecisionLike(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after_seconds(self) -> int: ...


class RateLimiter(Protocol):
    def hit(self, tenant_id: str, action: str, now: datetime) -> RateDecisionLike: ...


class IdempotentCreator(Protocol):
    def __call__(
        self, *, tenant: str, owner: str, key: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class JobsApi:
    jobs: JobService
    resume_tokens: ResumeTokens
    limiter: RateLimiter
    clock: Clock
    idempotent: IdempotentCreator | None = None
    runner: JobRunner | None = None  # launches and controls executions; None: jobs stay queued
    scheduler: SchedulerGateway | None = None  # starts `scheduled` jobs; None: they wait
    catalog: JobCatalog = field(default_factory=JobCatalog)  # no import bucket: no csv_import

    # -- writes -----------------------------------------------------------------------------

    def _writer(self, principal: Principal) -> None:
        principal.require(Scope.JOBS_WRITE)
        decision = self.limiter.hit(principal.tenant_id, "write", self.clock.now())
        if not decision.allowed:
            raise RateLimited(decision.retry_after_seconds)

    def create(
        self, principal: Principal, request: JobRequest, idempotency_key: str | None
    ) -> JobCreated:
        if principal.is_resume:
            raise Forbidden(Scope.JOBS_WRITE.value)
        self._writer(principal)
        self.catalog.check(request, principal.tenant_id)
        if idempotency_key and self.idempotent is not None:
            state = JobState.model_validate(
                self.idempotent(
                    tenant=principal.tenant_id,
                    owner=principal.subject,
                    key=idempotency_key,
                    body=request.model_dump(mode="json"),
                )
            )
        else:
            record = self.jobs.create_job(
                request, tenant_id=principal.tenant_id, owner_id=principal.subject
            )
            state = record.state()
        if self.runner is not None and state.status is JobStatus.QUEUED:
            # Idempotent on the execution name: a replayed create finds the same execution.
            # Beyond the tenant's running cap the job waits queued for a slot.
            self.runner.admit(JobRef(state.tenant_id, state.job_id))
        if self.scheduler is not None and state.status is JobStatus.SCHEDULED:
            self.scheduler.put(job_entry(state))  # an at(...) schedule; put is idempotent
        token = self.resume_tokens.mint(
            tenant_id=state.tenant_id, subject=principal.subject, job_id=state.job_id
        )
        return JobCreated(job=state, resume_token=token)

    def control(self, principal: Principal, job_id: str, action: ControlAction) -> JobState:
        principal.require_access(job_id)
        self._writer(principal)
        ref = JobRef(principal.tenant_id, job_id)
        match action:
            case "cancel":
                record = self.runner.cancel(ref) if self.runner else self.jobs.request_cancel(ref)
                if self.scheduler is not None and record.schedule and record.schedule.scheduled_for:
                    self.scheduler.delete(job_schedule_name(job_id))
            case "pause":
                record = self.jobs.pause(ref)
            case "resume":
                record = self.runner.resume(ref) if self.runner else self.jobs.resume(ref)
        return record.state()

    def delete(self, principal: Principal, job_id: str) -> None:
        principal.require_access(job_id)
        self._writer(principal)
        self.jobs.delete(JobRef(principal.tenant_id, job_id))

    # -- reads ------------------------------------------------------------------------------

    def list(
        self,
        principal: Principal,
        *,
        status: JobStatus | None,
        job_type: str | None,
        limit: int,
        cursor: str | None,
    ) -> JobList:
        if principal.is_resume:
            raise Forbidden(Scope.JOBS_READ.value)  # a resume token reads its one job only
        principal.require(Scope.JOBS_READ)
        page = self.jobs.list(
            principal.tenant_id, JobFilter(status=status, type=job_type), limit=limit, cursor=cursor
        )
        return JobList(jobs=[job.state() for job in page.jobs], next_cursor=page.next_cursor)

    def get(self, principal: Principal, job_id: str) -> JobState:
        principal.authorize(Scope.JOBS_READ, job_id)
        return self.jobs.get(JobRef(principal.tenant_id, job_id)).state()

    def messages(
        self, principal: Principal, job_id: str, *, after: int, limit: int, epoch: str | None
    ) -> MessageList:
        principal.authorize(Scope.JOBS_READ, job_id)
        log = self.jobs.messages_after(
            JobRef(principal.tenant_id, job_id), after, limit=limit, epoch=epoch
        )
        return MessageList(
            job_id=job_id,
            epoch=log.epoch,
            seq=log.seq,
            messages=log.messages,
            has_more=log.has_more,
        )
