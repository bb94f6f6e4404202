"""What a job type is: it counts its items (`prepare`) and processes one batch from a cursor.

Pure domain code: no AWS, no clock. A type reports a batch it could not finish by raising
`TransientJobError` (worth retrying with the job's retry policy) or `PermanentJobError` (the
job fails); items that are merely bad are counted as `failed` in the outcome, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel


class JobTypeError(Exception):
    """A batch could not be processed; `code` becomes the job's `error.code`."""

    def __init__(self, code: str, message: str) -> None:
        # The Lambda runtime reports only the type and str(exc): keep the code in the text.
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientJobError(JobTypeError):
    """Retry the batch after the job's backoff."""


class PermanentJobError(JobTypeError):
    """Retrying cannot help: the job fails with this error."""


class UnknownJobType(PermanentJobError):
    def __init__(self, name: str) -> None:
        super().__init__("unknown_job_type", f"no job type is registered as {name!r}")


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    succeeded: int
    failed: int
    skipped: int
    next_cursor: int
    done: bool


@dataclass(frozen=True, slots=True)
class RequestScope:
    """Whom a job request is checked for, handed to the params model as validation context.

    A type whose params name data (csv_import: a bucket and key) refuses anything outside the
    tenant's own: `import_bucket` is the one bucket imports may come from (None: not
    configured, so no import is allowed). The runner validates without a scope (structure only).
    """

    tenant_id: str
    import_bucket: str | None = None


class JobType(Protocol):
    name: str

    @property
    def params_model(self) -> type[BaseModel]:
        """The params a job of this type takes, validated at creation (POST /jobs, schedules,
        the launcher) with a `RequestScope` as context, and again by the type when it runs."""
        ...

    def prepare(self, params: dict[str, Any]) -> int:
        """How many items the job has; PermanentJobError when the params cannot work."""
        ...

    def process(
        self, params: dict[str, Any], cursor: int, batch_size: int, *, attempt: int = 1
    ) -> BatchOutcome:
        """Process up to `batch_size` items from `cursor`; `attempt` counts tries of this batch."""
        ...


@runtime_checkable
class ReportsResult(Protocol):
    """A job type with more to say in a completed job's `result` than its counters."""

    def result(self, params: dict[str, Any]) -> dict[str, Any]:
        """Entries added to `result` when the job completes; must not raise on bad items."""
        ...


def type_result(kind: JobType, params: dict[str, Any]) -> dict[str, Any]:
    """What `kind` adds to a completed job's `result`: nothing unless it `ReportsResult`."""
    return kind.result(params) if isinstance(kind, ReportsResult) else {}
