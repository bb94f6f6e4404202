"""Every legal and every illegal transition of the status graph."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest

from shared.domain import lifecycle
from shared.domain.envelope import MessageType
from shared.domain.errors import IllegalTransition
from shared.domain.models import JobRecord, JobStatus
from shared.domain.status import TRANSITIONS, can_transition, sources_of
from tests.unit.conftest import T0, MakeJob

S = JobStatus
LEGAL = {
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.CANCELLED),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.CANCELLED),
    (S.PAUSED, S.FAILED),
}
ALL_PAIRS = list(product(JobStatus, JobStatus))


def _in(job: JobRecord, status: JobStatus) -> JobRecord:
    return job.model_copy(update={"status": status, "seq": 4, "version": 3})


def test_the_table_is_exactly_the_documented_graph() -> None:
    table = {(src, dst) for src, targets in TRANSITIONS.items() for dst in targets}
    assert table == LEGAL
    assert set(TRANSITIONS) == set(JobStatus)
    assert sources_of(S.PAUSED) == {S.RUNNING}
    assert all(not TRANSITIONS[s] for s in JobStatus if s.is_terminal)


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL))
def test_legal_transition_announces_the_new_status(
    new_job: MakeJob, source: JobStatus, target: JobStatus
) -> None:
    # Given a job in `source`
    job = _in(new_job(), source)

    # When it moves to `target`
    change = lifecycle.transition(job, target, T0 + timedelta(seconds=5))

    # Then the job is in `target`, one version on, with one status message right after seq
    assert can_transition(source, target)
    assert change.job.status is target
    assert change.job.version == job.version + 1
    assert change.expected_version == job.version
    assert [(m.seq, m.type, m.data["status"]) for m in change.messages] == [
        (5, MessageType.STATUS, target.value)
    ]
    assert change.job.seq == 5
    assert (change.job.finished_at is not None) == target.is_terminal


@pytest.mark.parametrize(("source", "target"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_illegal_transition_is_refused(
    new_job: MakeJob, source: JobStatus, target: JobStatus
) -> None:
    job = _in(new_job(), source)
    with pytest.raises(IllegalTransition) as raised:
        lifecycle.transition(job, target, T0)
    assert not can_transition(source, target)
    assert raised.value.current is source
    assert raised.value.code == "illegal_transition"
    assert source.value in raised.value.message
