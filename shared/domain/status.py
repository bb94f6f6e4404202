"""The job status graph as one table; every transition in the code checks it.

scheduled → queued → running ⇄ paused → completed | failed | cancelled, plus the exits a user
expects: a job that has not started yet can be cancelled, a queued job whose start failed can
fail, and a paused job can be cancelled or fail (timeout) without being resumed first.
"""

from __future__ import annotations

from typing import Final

from shared.domain.models import JobStatus

S = JobStatus

TRANSITIONS: Final[dict[JobStatus, frozenset[JobStatus]]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
