"""The data a JobRunner execution carries from state to state (its `$`), as one model.

Every task returns a whole `RunState`; the definition's `Control` choice routes on `next`.
Tasks ignore what they do not know (`failure`, added by a Catch), so the same model parses
every task's input.

`events` is the execution's own estimate of the history events it has used so far: each task
adds what the path that led to it cost (see `shared.constants`, "History events"), so
`ProcessBatch` can hand the job over to a new execution before Standard's 25,000-event limit,
whatever mix of batches, failed attempts, backoffs and pauses got it there.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.models import Identifier, JobError, TetherModel


class Next(StrEnum):
    """Where `Control` sends the execution after a task."""

    PROCESS = "process"
    PAUSE = "pause"
    RETRY = "retry"
    RETRY_PREPARE = "retry_prepare"
    FINALIZE = "finalize"


class Outcome(StrEnum):
    """How `Finalize` ends the job; `none` when it already ended (nothing to write)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NONE = "none"


class RunState(TetherModel):
    # The domain's camelCase wire conventions, except that unknown keys (a Catch's `failure`,
    # Step Functions' own additions) are ignored rather than refused.
    model_config = ConfigDict(**{**TetherModel.model_config, "extra": "ignore"})

    tenant_id: Identifier
    job_id: Identifier
    cursor: int = Field(default=0, ge=0)
    next: Next = Next.PROCESS
    outcome: Outcome | None = None
    error: JobError | None = None
    wait_seconds: int | None = Field(default=None, ge=0)
    # With `next: pause`: how long AwaitResume may wait for resume (its TimeoutSecondsPath),
    # and the error the job ends with when it waited that long (the pause bound or timeout).
    pause_seconds: int | None = Field(default=None, ge=1)
    pause_error: JobError | None = None
    # Continue-as-new: which run of the job this execution is, its own ARN (so a superseded
    # execution notices and stops), how many batches it has run and how many history events
    # it has used (an estimate that never undercounts the paths Tether takes).
    generation: int = Field(default=0, ge=0)
    execution_arn: str | None = None
    executed: int = Field(default=0, ge=0)
    events: int = Field(default=0, ge=0)

    def carried(self, decision: RunState, *, events: int = 0) -> RunState:
        """`decision`, keeping what identifies this execution (tasks decide from the job), with
        `events` more history events spent."""
        return decision.model_copy(
            update={
                "generation": self.generation,
                "execution_arn": self.execution_arn,
                "executed": self.executed,
                "events": self.events + events,
            }
        )

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)


class TaskFailure(BaseModel):
    """What a Catch puts at `$.failure`: the error name and its cause (Lambda's error JSON)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Error: str = "States.TaskFailed"
    Cause: str | None = None


def failure_key(execution_arn: str, entered: str) -> str:
    """A failed try's identity: the execution and the time its RecordFailure state was entered
    (a retry of the state keeps both), hashed to a short, opaque key kept on the job."""
    return hashlib.sha256(f"{execution_arn}@{entered}".encode()).hexdigest()[:32]


_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME: Final = 80


def execution_name(job_id: str, generation: int = 0, attempt: int = 0) -> str:
    """A valid, deterministic execution name for one run of a job, at most 80 characters.

    `attempt` counts relaunches of the same run: Step Functions keeps a closed execution's name
    for 90 days, so a run whose execution closed before the job moved on needs a new name.
    The first attempt keeps the plain `-g{generation}` name.
    """
    safe = _NAME_UNSAFE.sub("_", job_id)
    suffix = f"-g{generation}" + (f"-r{attempt}" if attempt else "")
    return safe[: _MAX_NAME - len(suffix)] + suffix
