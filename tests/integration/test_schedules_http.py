"""Schedules over HTTP: CRUD, pause/resume, run now; EventBridge Scheduler follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from shared import constants as c
from tests.integration.scheduling import SCHEDULER_DLQ_ARN, World

RETRY_POLICY = {
    "MaximumEventAgeInSeconds": c.SCHEDULER_MAX_EVENT_AGE_SECONDS,
    "MaximumRetryAttempts": c.SCHEDULER_MAX_RETRY_ATTEMPTS,
}

NIGHTLY = {
    "name": "nightly import",
    "expression": "cron(30 2 * * ? *)",
    "timezone": "Europe/Paris",
    "job": {"type": "demo", "params": {"items": 5}, "priority": "low"},
}


def test_create_get_list_pause_resume_delete_and_scheduler_follows(world: World) -> None:
    # Given a user creating a nightly schedule in Paris time
    status, created = world.call("POST", "/schedules", NIGHTLY)

    # Then it exists, enabled, with its next run computed in its timezone (01:30 UTC in winter)
    assert status == 201, created
    schedule_id = created["scheduleId"]
    assert (created["state"], created["lastRunAt"], created["runs"]) == ("enabled", None, [])
    assert created["nextRunAt"] == "2026-01-01T01:30:00Z"
    # And EventBridge Scheduler holds the same schedule, targeting the launcher with its id
    aws = world.aws_schedule(f"schedule-{schedule_id}")
    assert (aws["ScheduleExpression"], aws["ScheduleExpressionTimezone"], aws["State"]) == (
        "cron(30 2 * * ? *)",
        "Europe/Paris",
        "ENABLED",
    )
    payload = json.loads(aws["Target"]["Input"])
    assert payload == {
        "kind": "schedule",
        "tenantId": "acme",
        "scheduleId": schedule_id,
        "scheduledTime": "<aws.scheduler.scheduled-time>",
    }
    # And Scheduler retries a failed launch for an hour, then sends it to the launch DLQ
    assert aws["Target"]["RetryPolicy"] == RETRY_POLICY
    assert aws["Target"]["DeadLetterConfig"] == {"Arn": SCHEDULER_DLQ_ARN}
    assert world.call("GET", f"/schedules/{schedule_id}") == (200, created)
    status, listed = world.call("GET", "/schedules")
    assert (status, [s["scheduleId"] for s in listed["schedules"]]) == (200, [schedule_id])

    # When paused (twice: idempotent)
    for _ in range(2):
        status, paused = world.call("POST", f"/schedules/{schedule_id}/pause")
        assert (status, paused["state"], paused["nextRunAt"]) == (200, "paused", None)
    # Then the Scheduler schedule is disabled, its target intact
    aws = world.aws_schedule(f"schedule-{schedule_id}")
    assert aws["State"] == "DISABLED"
    assert json.loads(aws["Target"]["Input"]) == payload
    assert aws["Target"]["DeadLetterConfig"] == {"Arn": SCHEDULER_DLQ_ARN}
    assert aws["Target"]["RetryPolicy"] == RETRY_POLICY

    # When resumed
    status, resumed = world.call("POST", f"/schedules/{schedule_id}/resume")
    assert (status, resumed["state"], resumed["nextRunAt"]) == (
        200,
        "enabled",
        created["nextRunAt"],
    )
    assert world.aws_schedule(f"schedule-{schedule_id}")["State"] == "ENABLED"

    # When deleted
    assert world.call("DELETE", f"/schedules/{schedule_id}") == (204, None)
    # Then both are gone
    assert world.call("GET", f"/schedules/{schedule_id}")[0] == 404
    assert world.aws_schedule_names() == set()


def test_run_now_starts_a_job_recorded_on_the_schedule(world: World) -> None:
    _, created = world.call("POST", "/schedules", NIGHTLY)
    schedule_id = created["scheduleId"]

    # When the user runs it now
    status, started = world.call("POST", f"/schedules/{schedule_id}/run")

    # Then a job from its request started, carrying the schedule's id
    assert status == 202, started
    job = started["job"]
    assert (job["type"], job["priority"], job["status"], started["admitted"]) == (
        "demo",
        "low",
        "queued",
        True,
    )
    assert job["schedule"]["scheduleId"] == schedule_id
    assert world.executions.started == [job["jobId"]]
    # And the schedule shows the run
    _, schedule = world.call("GET", f"/schedules/{schedule_id}")
    assert schedule["lastRunAt"] == "2026-01-01T00:00:00Z"
    assert [run["jobId"] for run in schedule["runs"]] == [job["jobId"]]


def test_invalid_expressions_are_422_problems_naming_the_error(world: World) -> None:
    cases = {
        "cron(0 12 * * *)": "six fields",
        "cron(0 12 * * MON *)": "exactly one of day-of-month and day-of-week is '?'",
        "rate(5 minute)": "plural",
        "at(2026-06-01T10:00:00)": "a schedule recurs",
    }
    for expression, fragment in cases.items():
        status, problem = world.call("POST", "/schedules", {**NIGHTLY, "expression": expression})
        assert (status, problem["code"]) == (422, "invalid_expression"), expression
        assert fragment in problem["detail"], problem
    status, problem = world.call("POST", "/schedules", {**NIGHTLY, "timezone": "Mars/Olympus"})
    assert (status, problem["code"]) == (422, "invalid_expression")
    assert "Mars/Olympus" in problem["detail"]
    # Nothing was created, neither in Tether nor in Scheduler
    assert world.call("GET", "/schedules")[1]["schedules"] == []
    assert world.aws_schedule_names() == set()


def test_list_pages_with_a_signed_cursor(world: World) -> None:
    created = {
        world.call("POST", "/schedules", {**NIGHTLY, "name": f"n{i}"})[1]["scheduleId"]
        for i in range(3)
    }
    _, first = world.call("GET", "/schedules?limit=2")
    assert len(first["schedules"]) == 2
    assert first["nextCursor"]
    _, second = world.call("GET", f"/schedules?limit=2&cursor={first['nextCursor']}")
    assert second["nextCursor"] is None
    listed = {s["scheduleId"] for s in first["schedules"] + second["schedules"]}
    assert listed == created
    status, problem = world.call("GET", f"/schedules?cursor={first['nextCursor']}", tenant="globex")
    assert (status, problem["code"]) == (400, "invalid_cursor")


def test_the_last_full_page_of_schedules_has_no_cursor(world: World) -> None:
    for i in range(2):
        world.call("POST", "/schedules", {**NIGHTLY, "name": f"n{i}"})

    _, page = world.call("GET", "/schedules?limit=2")

    assert (len(page["schedules"]), page["nextCursor"]) == (2, None)


def test_another_tenants_schedule_is_not_found(world: World) -> None:
    _, created = world.call("POST", "/schedules", NIGHTLY)
    path = f"/schedules/{created['scheduleId']}"
    for method, suffix in [("GET", ""), ("POST", "/pause"), ("POST", "/run"), ("DELETE", "")]:
        status, problem = world.call(method, path + suffix, tenant="globex")
        assert (status, problem["code"]) == (404, "schedule_not_found"), (method, suffix)
    assert world.call("GET", "/schedules", tenant="globex")[1]["schedules"] == []
    assert world.aws_schedule(f"schedule-{created['scheduleId']}")["State"] == "ENABLED"


def test_a_job_for_later_gets_an_at_schedule_that_cancel_deletes(world: World) -> None:
    later = datetime(2026, 1, 1, 9, 15, tzinfo=UTC)
    body = {"type": "demo", "params": {"items": 1}, "schedule": {"scheduledFor": later.isoformat()}}

    # When a job is created for later
    status, created = world.call("POST", "/jobs", body)

    # Then it waits scheduled, not launched, with a one-time at(...) schedule in UTC
    assert status == 202
    job = created["job"]
    assert job["status"] == "scheduled"
    assert world.executions.started == []
    aws = world.aws_schedule(f"job-{job['jobId']}")
    assert (aws["ScheduleExpression"], aws["ActionAfterCompletion"]) == (
        "at(2026-01-01T09:15:00)",
        "DELETE",
    )
    assert aws["Target"]["RetryPolicy"] == RETRY_POLICY
    assert aws["Target"]["DeadLetterConfig"] == {"Arn": SCHEDULER_DLQ_ARN}

    # When cancelled, the schedule goes with it
    status, cancelled = world.call("POST", f"/jobs/{job['jobId']}/cancel")
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert world.aws_schedule_names() == set()


def test_schedule_window_is_validated_and_start_bounds_the_next_run(world: World) -> None:
    start = world.clock.now() + timedelta(days=3)
    body = {**NIGHTLY, "expression": "rate(6 hours)", "startAt": start.isoformat()}
    status, created = world.call("POST", "/schedules", body)
    assert status == 201, created
    assert created["nextRunAt"] == "2026-01-04T00:00:00Z"
    refused = {
        "endAt must be after startAt": {**body, "endAt": (start - timedelta(days=1)).isoformat()},
        "startAt cannot lie more than 5 minutes in the past": {
            **body,
            "startAt": (world.clock.now() - timedelta(hours=1)).isoformat(),
        },
        "endAt must lie in the future": {
            **NIGHTLY,
            "endAt": (world.clock.now() - timedelta(seconds=1)).isoformat(),
        },
    }
    for detail, bad in refused.items():
        status, problem = world.call("POST", "/schedules", bad)
        assert (status, problem["code"], problem["detail"]) == (422, "invalid_expression", detail)


def test_the_schedules_routes_are_in_the_openapi_document(world: World) -> None:
    status, document = world.call("GET", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert set(paths["/schedules"]) == {"get", "post"}
    assert set(paths["/schedules/{schedule_id}"]) == {"get", "delete"}
    for action in ("pause", "resume", "run"):
        assert "post" in paths[f"/schedules/{{schedule_id}}/{action}"]
