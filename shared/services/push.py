"""Push use cases: register and remove devices, notify a finished job.

`Devices` is what `POST /devices` and `DELETE /devices/{id}` do for the verified caller: a
device belongs to one tenant and one user, and every lookup goes through that owner's key, so
another tenant's or user's device answers 404 and can be neither removed nor pushed to.

`PushNotifier` is the JobRunner's Notify task: after the grace period it reads whether the
owner acknowledged the job's terminal message live (the delivery cursor `ack` moves) and, if
not (or when the job's policy says `always`), publishes to each of the owner's enabled devices.
Every device gets one recorded `PushAttempt`; one device's failure is recorded, never raised,
so it can neither fail the job nor stop the pushes to the other devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.domain.auth import Principal, Scope
from shared.domain.clock import Clock
from shared.domain.errors import DeviceNotFound, Forbidden, PushNotConfigured, RateLimited
from shared.domain.models import JobError, JobRecord, PushAttempt, PushOutcome, PushPolicy
from shared.domain.push import (
    Device,
    DeviceRegistration,
    DeviceView,
    device_id_for,
    owner_key,
    seen_live,
    sns_attributes,
    sns_message,
    wants_push,
)
from shared.services.api import RateLimiter
from shared.services.jobs import JobRef, JobService
from shared.services.ports import (
    CursorReader,
    DeviceStore,
    EndpointDisabled,
    PushGateway,
)

REASON_DISABLED: Final = "SNS disabled the endpoint (the platform rejected the token)"
REASON_GONE: Final = "the endpoint no longer exists"
REASON_REASSIGNED: Final = "the token was registered again by another user"


@dataclass(frozen=True, slots=True)
class Registered:
    device: DeviceView
    created: bool


@dataclass(frozen=True, slots=True)
class Devices:
    store: DeviceStore
    gateway: PushGateway
    clock: Clock
    limiter: RateLimiter | None = None

    def _caller(self, principal: Principal) -> None:
        # A resume token reads one job; devices belong to the user behind a user token.
        if principal.is_resume:
            raise Forbidden(Scope.JOBS_READ.value)
        principal.require(Scope.JOBS_READ)
        if self.limiter is not None:
            decision = self.limiter.hit(principal.tenant_id, "write", self.clock.now())
            if not decision.allowed:
                raise RateLimited(decision.retry_after_seconds)

    def register(self, principal: Principal, request: DeviceRegistration) -> Registered:
        """Register (or re-register) a token; idempotent, repairs a changed or disabled one."""
        self._caller(principal)
        if not self.gateway.configured(request.platform):
            raise PushNotConfigured(request.platform.value)
        tenant, owner = principal.tenant_id, principal.subject
        device_id = request.device_id or device_id_for(request.platform, request.token)
        existing = self.store.get(tenant, owner, device_id)
        endpoint_arn = None
        if existing is not None:
            if existing.platform is request.platform:
                endpoint_arn = existing.endpoint_arn
            else:
                self._release(existing)  # the id moved to another platform's application
        arn = self.gateway.register(
            request.platform,
            request.token,
            owner_key=owner_key(tenant, owner),
            endpoint_arn=endpoint_arn,
        )
        now = self.clock.now()
        device = Device(
            device_id=device_id,
            tenant_id=tenant,
            owner_id=owner,
            platform=request.platform,
            endpoint_arn=arn,
            locale=request.locale,
            enabled=True,
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
        )
        self.store.put(device)
        return Registered(DeviceView.of(device), created=existing is None)

    def delete(self, principal: Principal, device_id: str) -> None:
        self._caller(principal)
        device = self.store.get(principal.tenant_id, principal.subject, device_id)
        if device is None:
            raise DeviceNotFound(device_id)
        self._release(device)
        self.store.delete(principal.tenant_id, principal.subject, device_id)

    def _release(self, device: Device) -> None:
        """Delete the device's endpoint, unless another user registered its token since."""
        state = self.gateway.endpoint(device.endpoint_arn)
        mine = owner_key(device.tenant_id, device.owner_id)
        if state is not None and state.owner_key in (None, mine):
            self.gateway.delete(device.endpoint_arn)


@dataclass(frozen=True, slots=True)
class PushNotifier:
    jobs: JobService
    devices: DeviceStore
    gateway: PushGateway
    cursors: CursorReader
    clock: Clock

    def notify(self, ref: JobRef) -> list[PushAttempt]:
        """Push a finished job to its owner's devices once; the attempts, as recorded."""
        job = self.jobs.get(ref)
        if not wants_push(job):
            return job.push_attempts
        seen = self._seen(job)
        attempts = [
            self._push(job, device, seen)
            for device in self.devices.list(job.tenant_id, job.owner_id)
        ]
        self.jobs.record_pushes(ref, attempts, current=job)
        return attempts

    def _seen(self, job: JobRecord) -> bool:
        if job.push is not PushPolicy.IF_NOT_SEEN:
            return False
        cursor = self.cursors.cursor(job.tenant_id, job.owner_id, job.job_id)
        return seen_live(job, (cursor.seq, cursor.epoch) if cursor is not None else None)

    def _push(self, job: JobRecord, device: Device, seen: bool) -> PushAttempt:
        if seen:
            return self._attempt(device, PushOutcome.SKIPPED_SEEN)
        if not device.enabled:
            reason = device.disabled_reason or REASON_DISABLED
            return self._attempt(device, PushOutcome.SKIPPED_DISABLED, "endpoint_disabled", reason)
        try:
            return self._send(job, device)
        except Exception as failure:
            code = getattr(failure, "response", {}).get("Error", {}).get("Code")
            message = str(failure)[:512]
            return self._attempt(device, PushOutcome.ERROR, str(code or "push_failed"), message)

    def _send(self, job: JobRecord, device: Device) -> PushAttempt:
        state = self.gateway.endpoint(device.endpoint_arn)
        reason = None
        if state is None:
            reason = REASON_GONE
        elif not state.enabled:
            reason = REASON_DISABLED
        elif state.owner_key not in (None, owner_key(job.tenant_id, job.owner_id)):
            reason = REASON_REASSIGNED
        if reason is None:
            try:
                message_id = self.gateway.publish(
                    device.endpoint_arn,
                    sns_message(job, device.platform),
                    sns_attributes(job, device.platform),
                )
                return self._attempt(device, PushOutcome.SENT, message_id=message_id)
            except EndpointDisabled:
                reason = REASON_DISABLED
        self.devices.mark_disabled(
            device.tenant_id, device.owner_id, device.device_id, reason, self.clock.now()
        )
        return self._attempt(device, PushOutcome.SKIPPED_DISABLED, "endpoint_disabled", reason)

    def _attempt(
        self,
        device: Device,
        outcome: PushOutcome,
        code: str | None = None,
        message: str | None = None,
        *,
        message_id: str | None = None,
    ) -> PushAttempt:
        error = JobError(code=code[:64], message=message or code) if code is not None else None
        return PushAttempt(
            device_id=device.device_id,
            platform=device.platform,
            outcome=outcome,
            at=self.clock.now(),
            error=error,
            message_id=message_id,
        )
