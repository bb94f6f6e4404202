"""Domain errors: values with stable codes, mapped once to problem+json and to `error` frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

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

    def __init__(self, job_id: str, after: int, oldest_available: int | None) -> None:
        super().__init__(
            f"job {job_id}: messages after seq {after} are no longer in the log; resync state"
        )
        self.job_id = job_id
        self.after = after
        self.oldest_available = oldest_available


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
