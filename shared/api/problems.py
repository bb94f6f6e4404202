"""Errors as RFC 9457 problem details: the one place a domain error gets an HTTP status.

The HTTP API answers every error as `application/problem+json` built here; the WebSocket
routes send the same `code` and `message` in an `error` frame.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import errors
from shared.domain.models import JobState

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://tether.dev/problems/"

# One table: domain error → HTTP status. Anything not listed is a 500 and says nothing inside.
STATUS_OF: Final[dict[type[errors.TetherError], HTTPStatus]] = {
    errors.JobNotFound: HTTPStatus.NOT_FOUND,
    errors.IllegalTransition: HTTPStatus.CONFLICT,
    errors.MessagesExpired: HTTPStatus.GONE,
    errors.InvalidCursor: HTTPStatus.BAD_REQUEST,
    errors.JobAlreadyExists: HTTPStatus.CONFLICT,
    errors.StaleJob: HTTPStatus.CONFLICT,
    errors.TooMuchContention: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.Unauthenticated: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.AuthUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    errors.RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.IdempotencyKeyReused: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.RequestInProgress: HTTPStatus.CONFLICT,
    errors.InvalidExpression: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.ScheduleNotFound: HTTPStatus.NOT_FOUND,
    errors.DeviceNotFound: HTTPStatus.NOT_FOUND,
    errors.PushNotConfigured: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.InvalidPushToken: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.InvalidRequest: HTTPStatus.UNPROCESSABLE_ENTITY,
}


class FieldProblem(BaseModel):
    """One refused field of a 422: where (`loc`: `body`, `query`, `path`, then keys and
    indexes), a machine-readable `type`, and why in words."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int]
    type: str
    message: str


class Problem(BaseModel):
    """application/problem+json; `code` is Tether's stable machine-readable error code.

    Every member a problem can carry is declared (no others are allowed), so this one model
    is both what the handler sends and the schema the OpenAPI document declares for it.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Tether's stable machine-readable error code")
    errors: list[FieldProblem] | None = Field(
        default=None, description="422 validation_failed: every offending field"
    )
    job: JobState | None = Field(
        default=None, description="410 messages_expired: the job's state, to resync from"
    )

    def body(self) -> dict[str, Any]:
        # Absent members are left out; inside `job`, nulls stay (it is the job's state as is).
        dumped = self.model_dump(mode="json")
        return {name: value for name, value in dumped.items() if value is not None}


def problem(
    status: HTTPStatus, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> Problem:
    return Problem(
        type=f"{PROBLEM_TYPE_BASE}{code}",
        title=title or status.phrase,
        status=int(status),
        detail=detail,
        code=code,
        **extra,
    )


def status_for(error: errors.TetherError) -> HTTPStatus:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return HTTPStatus.INTERNAL_SERVER_ERROR


def problem_for(error: errors.TetherError, **extra: Any) -> Problem:
    return problem(status_for(error), error.code, error.message, title=error.title, **extra)
