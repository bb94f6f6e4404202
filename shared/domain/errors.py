"""Domain errors: values with stable codes, mapped once to problem+json and to `error` frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from shared.domain.models import JobRecord, JobStatus


class TetherError(Exception):
    """Base of every error a client may see; `code` is part of the public contract."""

    code: ClassVar[str] = "tether_error"
    title: ClassVar[str] = "Tether error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(TetherError):
    """Missing, or owned by another tenant: the two are indistinguishable on purpose."""

    code = "job_not_found"
    title = "Job not found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class IllegalTransition(TetherError):
    code = "illegal_transition"
    title = "Illegal status transition"

    def __init__(self, job_id: str, current: JobStatus, action: str) -> None:
        super().__init__(f"job {job_id} is {current.value}: cannot {action}")
        self.job_id = job_id
        self.current = current
        self.action = action


class MessagesExpired(TetherError):
    """The log no longer holds the message right after the caller's position: resync."""

    code = "messages_expired"
    title = "Messages expired"

    def __init__(
        self,
        job_id: str,
        after: int,
        oldest_available: int | None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            f"job {job_id}: messages after seq {after} are no longer in the log; resync state"
        )
        self.job_id = job_id
        self.after = after
        self.oldest_available = oldest_available
        self.snapshot = snapshot  # the job's state, so the caller can resync without a new read


class InvalidCursor(TetherError):
    code = "invalid_cursor"
    title = "Invalid pagination cursor"

    def __init__(self, reason: str = "the cursor is malformed, tampered with or not yours") -> None:
        super().__init__(reason)


class JobAlreadyExists(TetherError):
    code = "job_exists"
    title = "Job already exists"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already exists")
        self.job_id = job_id


class StaleJob(TetherError):
    """A conditional write lost a race; carries the current record (None if it vanished)."""

    code = "conflict"
    title = "Concurrent modification"

    def __init__(self, job_id: str, current: JobRecord | None) -> None:
        super().__init__(f"job {job_id} changed concurrently")
        self.job_id = job_id
        self.current = current


class TooMuchContention(TetherError):
    code = "contention"
    title = "Too much contention"

    def __init__(self, job_id: str, attempts: int) -> None:
        super().__init__(f"job {job_id}: gave up after {attempts} conflicting writes")
        self.job_id = job_id


class Unauthenticated(TetherError):
    """401: no usable credentials. The reason never quotes the token, only what was wrong."""

    code = "unauthenticated"
    title = "Unauthenticated"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(TetherError):
    """403: a valid principal without the scope the action needs."""

    code = "forbidden"
    title = "Forbidden"

    def __init__(self, scope: str) -> None:
        super().__init__(f"the token lacks the {scope} scope")
        self.scope = scope


class AuthUnavailable(TetherError):
    """503: the issuer's key set could not be fetched; the caller's token may well be fine."""

    code = "auth_unavailable"
    title = "Authentication unavailable"

    def __init__(self) -> None:
        super().__init__("the token issuer's signing keys are unreachable; retry later")


class RateLimited(TetherError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many writes for this tenant; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class PayloadTooLarge(TetherError):
    code = "payload_too_large"
    title = "Payload too large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the request body is {size} bytes; the limit is {limit}")


class IdempotencyKeyReused(TetherError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request body")


class RequestInProgress(TetherError):
    code = "request_in_progress"
    title = "Request in progress"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry")


class InvalidExpression(TetherError):
    """A schedule expression or timezone that EventBridge Scheduler would refuse."""

    code = "invalid_expression"
    title = "Invalid schedule expression"


class ScheduleNotFound(TetherError):
    """Missing, or owned by another tenant: the two are indistinguishable on purpose."""

    code = "schedule_not_found"
    title = "Schedule not found"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id} does not exist")
        self.schedule_id = schedule_id


class DeviceNotFound(TetherError):
    """Missing, or another user's or tenant's device: indistinguishable on purpose."""

    code = "device_not_found"
    title = "Device not found"

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id} does not exist")
        self.device_id = device_id


class PushNotConfigured(TetherError):
    """No SNS platform application is configured for the platform a device asked for."""

    code = "push_not_configured"
    title = "Push not configured"

    def __init__(self, platform: str) -> None:
        super().__init__(f"push to {platform} devices is not configured on this deployment")
        self.platform = platform


class InvalidPushToken(TetherError):
    """The push service refused the token itself; the message never quotes the token."""

    code = "invalid_push_token"
    title = "Invalid push token"

    def __init__(self, platform: str) -> None:
        super().__init__(f"the {platform} push service refused this token")
        self.platform = platform


class InvalidRequest(TetherError):
    """422: a request that parsed but that Tether refuses, with every offending field.

    The same code and `errors` shape as the HTTP API's schema validation, so a client reads one
    kind of answer whether the route's types or a later rule (a job type's own params model, a
    tenant's import prefix) refused the field.
    """

    code = "validation_failed"
    title = "Invalid request"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.where()}: {error.message}" for error in errors))
        self.errors = errors

    def fields(self) -> list[dict[str, Any]]:
        return [error.as_json() for error in self.errors]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field: where (`loc`, keys and indexes from the body), why, in words."""

    loc: tuple[str | int, ...]
    type: str
    message: str

    def where(self) -> str:
        return ".".join(map(str, self.loc))

    def as_json(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "type": self.type, "message": self.message}


class UnreadableJob(TetherError):
    """A stored job item that no longer parses as a job (an old bug, a hand edit, a mangled
    write): readers skip it in listings and sweeps; reading it by id is a server error."""

    code = "unreadable_job"
    title = "Unreadable job"

    def __init__(self, tenant_id: str, job_id: str) -> None:
        super().__init__(f"job {job_id} is stored in a shape this version cannot read")
        self.tenant_id = tenant_id
        self.job_id = job_id
