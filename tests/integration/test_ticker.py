"""The local ticker fires at, rate and cron schedules and the hourly cleanup across a simulated
day (injected clock), exactly when EventBridge would, through the real launcher handler."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from functions import cleanup as cleanup_handler
from functions import launcher as launcher_handler
from infra.local.ticker import Ticker
from shared.domain.models import JobStatus
from shared.services.jobs import JobRef
from tests.integration.scheduling import GROUP, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday; the world's clock starts here


def _at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def test_ticker_fires_at_rate_and_cron_schedules_and_cleanup_across_a_day(world: World) -> None:
    # Given a job for 09:15, a rate(6 hours) schedule, a weekday 09:30 Paris cron, a paused one
    later = {
        "type": "demo",
        "params": {"items": 1},
        "schedule": {"scheduledFor": _at(9, 15).isoformat()},
    }
    job_id = world.call("POST", "/jobs", later)[1]["job"]["jobId"]
    ids = {}
    for name, expression, timezone in [
        ("six-hourly", "rate(6 hours)", "UTC"),
        ("weekday-morning", "cron(30 9 ? * MON-FRI *)", "Europe/Paris"),
        ("paused", "cron(0 * * * ? *)", "UTC"),
    ]:
        body = {
            "name": name,
            "expression": expression,
            "timezone": timezone,
            "job": {"type": "demo", "params": {"items": 1}},
        }
        status, created = world.call("POST", "/schedules", body)
        assert status == 201, created
        ids[name] = created["scheduleId"]
    world.call("POST", f"/schedules/{ids['paused']}/pause")
    predicted = {
        name: world.call("GET", f"/schedules/{schedule_id}")[1]["nextRunAt"]
        for name, schedule_id in ids.items()
    }
    ticker = Ticker(
        scheduler=world.scheduler,
        group=GROUP,
        launch=launcher_handler.handler,
        cleanup=cleanup_handler.handler,
        clock=world.clock,
    )

    # When the clock moves through one day, ticking every quarter of an hour
    fired = []
    while world.clock.now() < T0 + timedelta(days=1):
        fired.extend(ticker.tick(world.clock.advance(minutes=15)))
        world.complete_launched()  # the JobRunner's part: launched jobs run and end

    # Then each schedule fired exactly when EventBridge would have
    by_name: dict[str, list[datetime]] = defaultdict(list)
    for run in fired:
        by_name[run.name].append(run.due)
    assert by_name[f"job-{job_id}"] == [_at(9, 15)]
    assert by_name[f"schedule-{ids['six-hourly']}"] == [_at(6), _at(12), _at(18), _at(0, day=2)]
    assert by_name[f"schedule-{ids['weekday-morning']}"] == [_at(8, 30)]  # 09:30 in Paris
    assert f"schedule-{ids['paused']}" not in by_name
    assert by_name["cleanup"] == [T0 + timedelta(hours=h) for h in range(1, 25)]
    # And the first run of each was the nextRunAt Tether showed when it was created
    assert predicted["six-hourly"] == "2026-01-01T06:00:00Z"
    assert predicted["weekday-morning"] == "2026-01-01T08:30:00Z"
    assert predicted["paused"] is None
    # And the launcher ran them: the job for later started, each schedule run is a job
    assert world.jobs.get(JobRef("acme", job_id)).status is JobStatus.COMPLETED
    assert len(world.executions.started) == 1 + 4 + 1  # the job for later and 5 schedule runs
    _, six_hourly = world.call("GET", f"/schedules/{ids['six-hourly']}")
    assert [run["scheduledFor"] for run in six_hourly["runs"]] == [
        "2026-01-02T00:00:00Z",
        "2026-01-01T18:00:00Z",
        "2026-01-01T12:00:00Z",
        "2026-01-01T06:00:00Z",
    ]
    assert six_hourly["nextRunAt"] == "2026-01-02T06:00:00Z"
    assert all(run.answer["ran"] for run in fired if run.name == "cleanup")
    # And the one-time schedule deleted itself once it had run
    assert world.aws_schedule_names() == {f"schedule-{i}" for i in ids.values()}


def test_ticker_fires_nothing_twice_when_the_clock_moves_back(world: World) -> None:
    body = {
        "name": "hourly",
        "expression": "rate(1 hour)",
        "job": {"type": "demo", "params": {"items": 1}},
    }
    world.call("POST", "/schedules", body)
    ticker = Ticker(
        scheduler=world.scheduler, group=GROUP, launch=launcher_handler.handler, clock=world.clock
    )
    first = ticker.tick(world.clock.advance(hours=3))
    assert [run.due for run in first] == [_at(1), _at(2), _at(3)]

    world.clock.set(T0 + timedelta(hours=1))
    assert ticker.tick(world.clock.now()) == []
    assert [run.due for run in ticker.tick(T0 + timedelta(hours=4))] == [_at(4)]


def test_ticker_start_and_stop_run_a_background_thread(world: World) -> None:
    ticker = Ticker(
        scheduler=world.scheduler,
        group="fresh-group",
        launch=launcher_handler.handler,
        clock=world.clock,
        period_seconds=0.01,
    ).start()
    ticker.stop()
    # start() created the group the local stack's schedules live in
    assert world.scheduler.get_schedule_group(Name="fresh-group")["Name"] == "fresh-group"
