"""Pure job changes: numbering, coalescing, idempotent control, and invariants under any story."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import lifecycle
from shared.domain.envelope import MessageType
from shared.domain.errors import IllegalTransition
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobError, JobRecord, JobStatus, ProgressDelta
from tests.unit.conftest import T0, MakeJob, make_job

INTERVAL = timedelta(milliseconds=250)


def _apply(job: JobRecord, change: JobChange | None) -> JobRecord:
    return job if change is None else change.job


def test_new_job_is_queued_with_the_first_message(new_job: MakeJob) -> None:
    job = new_job(priority="low")
    assert (job.status, job.seq, job.version, job.epoch) == (JobStatus.QUEUED, 1, 1, "e1")
    assert job.created_at == job.updated_at == T0


def test_a_schedule_in_the_past_queues_at_once(new_job: MakeJob) -> None:
    job = new_job(schedule={"scheduledFor": (T0 - timedelta(minutes=1)).isoformat()})
    assert job.status is JobStatus.QUEUED


def test_progress_is_coalesced_and_never_lost(new_job: MakeJob) -> None:
    # Given a running job
    job = lifecycle.start(new_job(), T0, total=10, execution_arn=None).job

    # When three batches report within 250 ms, then one after
    first = lifecycle.report_progress(job, ProgressDelta(succeeded=2), T0, min_interval=INTERVAL)
    job = first.job
    second = lifecycle.report_progress(
        job, ProgressDelta(failed=1), T0 + timedelta(milliseconds=100), min_interval=INTERVAL
    )
    job = second.job
    third = lifecycle.report_progress(
        job, ProgressDelta(skipped=1), T0 + timedelta(milliseconds=300), min_interval=INTERVAL
    )

    # Then the first and third are announced, the second only counted
    assert [m.type for m in first.messages] == [MessageType.PROGRESS]
    assert second.messages == ()
    assert second.job.progress_pending
    assert second.job.seq == first.job.seq
    assert [m.data["processed"] for m in third.messages] == [4]
    assert not third.job.progress_pending


def test_pending_counters_are_announced_before_a_status_change(new_job: MakeJob) -> None:
    job = lifecycle.start(new_job(), T0, total=2, execution_arn="arn:x").job
    job = lifecycle.report_progress(job, ProgressDelta(succeeded=1), T0, min_interval=INTERVAL).job
    job = lifecycle.report_progress(job, ProgressDelta(succeeded=1), T0, min_interval=INTERVAL).job
    assert job.progress_pending

    change = lifecycle.fail(job, T0, error=JobError(code="boom", message="no"))

    assert [(m.seq, m.type) for m in change.messages] == [
        (job.seq + 1, MessageType.PROGRESS),
        (job.seq + 2, MessageType.STATUS),
    ]
    assert change.messages[0].data["processed"] == 2
    assert change.messages[1].data["error"] == {"code": "boom", "message": "no"}
    assert change.job.seq == job.seq + 2


def test_flush_progress_announces_only_when_something_is_pending(new_job: MakeJob) -> None:
    job = lifecycle.start(new_job(), T0, total=2, execution_arn=None).job
    assert lifecycle.flush_progress(job, T0) is None
    job = lifecycle.report_progress(job, ProgressDelta(succeeded=1), T0, min_interval=INTERVAL).job
    job = lifecycle.report_progress(job, ProgressDelta(succeeded=1), T0, min_interval=INTERVAL).job
    flushed = lifecycle.flush_progress(job, T0)
    assert flushed is not None
    assert [m.data["processed"] for m in flushed.messages] == [2]


def test_progress_outside_running_is_refused(new_job: MakeJob) -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.report_progress(new_job(), ProgressDelta(succeeded=1), T0, min_interval=INTERVAL)


def test_control_requests_are_idempotent(new_job: MakeJob) -> None:
    running = lifecycle.start(new_job(), T0, total=1, execution_arn=None).job

    cancel = lifecycle.request_cancel(running, T0)
    assert cancel is not None
    assert lifecycle.request_cancel(cancel.job, T0) is None

    pause = lifecycle.request_pause(running, T0)
    assert pause is not None
    assert lifecycle.request_pause(pause.job, T0) is None
    with pytest.raises(IllegalTransition):
        lifecycle.request_pause(cancel.job, T0)  # a job being cancelled is not paused

    assert lifecycle.resume(running, T0) is None
    unpause = lifecycle.resume(pause.job, T0)
    assert unpause is not None
    assert not unpause.job.pause_requested
    with pytest.raises(IllegalTransition):
        lifecycle.resume(new_job(), T0)


ACTIONS = st.lists(
    st.sampled_from(
        [
            "start",
            "progress",
            "flush",
            "cancel",
            "pause",
            "mark_paused",
            "resume",
            "complete",
            "fail",
        ]
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(actions=ACTIONS, steps=st.lists(st.integers(0, 400), min_size=40, max_size=40))
def test_any_story_keeps_the_log_gap_free_and_the_graph_honoured(
    actions: list[str], steps: list[int]
) -> None:
    job = make_job()
    now = T0
    seqs = [1]
    for action, step in zip(actions, steps, strict=False):
        now += timedelta(milliseconds=step)
        before = job
        try:
            change = _step(job, action, now)
        except IllegalTransition:
            continue
        job = _apply(job, change)
        if change is None:
            continue
        # Every change bumps the version by one and numbers its messages after the head.
        assert job.version == before.version + 1
        seqs.extend(m.seq or 0 for m in change.messages)
        assert job.seq == seqs[-1]
        if before.is_terminal:
            pytest.fail(f"{action} changed a finished job")
        assert job.counters.processed == job.counters.succeeded + job.counters.failed + (
            job.counters.skipped
        )
    assert seqs == list(range(1, len(seqs) + 1))
    if job.is_terminal:
        assert not job.progress_pending


def _step(job: JobRecord, action: str, now: datetime) -> JobChange | None:
    match action:
        case "start":
            return lifecycle.start(job, now, total=100, execution_arn=None)
        case "progress":
            delta = ProgressDelta(succeeded=1, skipped=1)
            return lifecycle.report_progress(job, delta, now, min_interval=INTERVAL)
        case "flush":
            return lifecycle.flush_progress(job, now)
        case "cancel":
            return lifecycle.request_cancel(job, now)
        case "pause":
            return lifecycle.request_pause(job, now)
        case "mark_paused":
            return lifecycle.mark_paused(job, now)
        case "resume":
            return lifecycle.resume(job, now)
        case "complete":
            return lifecycle.complete(job, now, result={"ok": True})
        case _:
            return lifecycle.fail(job, now, error=JobError(code="x", message="y"))
