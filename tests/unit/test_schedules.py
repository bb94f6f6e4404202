"""Schedule records: runs recorded once, newest first, capped; derived run job ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.errors import InvalidExpression
from shared.domain.models import JobRequest
from shared.domain.schedules import (
    MAX_RECORDED_RUNS,
    ScheduleRecord,
    ScheduleRequest,
    ScheduleRun,
    ScheduleState,
    run_job_id,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _schedule(**changes: object) -> ScheduleRecord:
    fields: dict[str, object] = {
        "schedule_id": "s_1",
        "tenant_id": "acme",
        "owner_id": "alice",
        "name": "hourly",
        "expression": "rate(1 hour)",
        "timezone": "UTC",
        "job": JobRequest(type="demo"),
        "state": ScheduleState.ENABLED,
        "created_at": T0,
        "updated_at": T0,
    }
    return ScheduleRecord.model_validate({**fields, **changes})


def _run(hour: int) -> ScheduleRun:
    due = T0 + timedelta(hours=hour)
    return ScheduleRun(job_id=run_job_id("s_1", due), scheduled_for=due, started_at=due)


def test_runs_are_recorded_once_newest_first_and_capped() -> None:
    schedule = _schedule()
    for hour in [1, 3, 2, *range(4, 4 + MAX_RECORDED_RUNS)]:
        updated = schedule.with_run(_run(hour), T0)
        assert updated is not None
        schedule = updated
    assert len(schedule.runs) == MAX_RECORDED_RUNS
    assert schedule.runs[0].scheduled_for == T0 + timedelta(hours=3 + MAX_RECORDED_RUNS)
    assert schedule.last_run_at == schedule.runs[0].scheduled_for
    assert schedule.with_run(schedule.runs[5], T0) is None  # a retried launch records nothing


def test_a_late_retry_never_moves_last_run_back() -> None:
    schedule = _schedule().with_run(_run(5), T0)
    assert schedule is not None
    later = schedule.with_run(_run(2), T0)
    assert later is not None
    assert later.last_run_at == T0 + timedelta(hours=5)


def test_run_job_ids_are_derived_and_time_ordered() -> None:
    first, again = run_job_id("s_1", T0), run_job_id("s_1", T0)
    assert first == again
    assert run_job_id("s_2", T0) != first
    assert run_job_id("s_1", T0 + timedelta(hours=1)) > first
    assert first.startswith("j_")
    assert len(first) == 26


def test_next_run_respects_pause_and_end() -> None:
    assert _schedule().next_run(T0) == T0 + timedelta(hours=1)
    assert _schedule(state=ScheduleState.PAUSED).next_run(T0) is None
    assert _schedule(end_at=T0 + timedelta(minutes=30)).next_run(T0) is None


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"expression": "at(2026-01-02T00:00:00)"}, "a schedule recurs"),
        ({"timezone": "Nowhere/Land"}, "unknown timezone"),
        ({"job": {"type": "demo", "schedule": {"scheduleId": "s_x"}}}, "its own schedule"),
    ],
)
def test_requests_refuse_what_a_schedule_cannot_be(
    changes: dict[str, object], fragment: str
) -> None:
    body = {"name": "x", "expression": "rate(1 day)", "job": {"type": "demo"}, **changes}
    with pytest.raises(InvalidExpression, match=fragment):
        ScheduleRequest.model_validate(body).validated()
