"""The launcher Lambda: one-time jobs, schedule runs and S3 imports, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain.models import JobStatus
from shared.domain.schedules import run_job_id
from shared.services.jobs import JobRef
from tests.integration.scheduling import World


def _s3_event(key: str, sequencer: str = "0062E99A88DC407460") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::tether-imports"],
        "detail": {
            "version": "0",
            "bucket": {"name": "tether-imports"},
            "object": {"key": key, "size": 120, "etag": "b1946ac9", "sequencer": sequencer},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def test_scheduler_starts_a_job_for_later_once(world: World) -> None:
    later = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    _, created = world.call(
        "POST",
        "/jobs",
        {"type": "demo", "params": {"items": 1}, "schedule": {"scheduledFor": later.isoformat()}},
    )
    job_id = created["job"]["jobId"]
    event = {
        "kind": "job",
        "tenantId": "acme",
        "jobId": job_id,
        "scheduledTime": "2026-01-01T09:00:00Z",
    }

    # When Scheduler invokes the launcher, twice (at-least-once delivery)
    first = world.launch(event)
    second = world.launch(event)

    # Then the job was queued and launched once
    assert (first["status"], first["admitted"]) == ("queued", True)
    assert second["jobId"] == job_id
    assert world.executions.started == [job_id]
    job = world.jobs.get(JobRef("acme", job_id))
    assert [
        m.data["status"] for m in world.jobs.messages_after(JobRef("acme", job_id), 0).messages
    ] == [
        "scheduled",
        "queued",
    ]
    assert job.status is JobStatus.QUEUED


def test_a_schedule_run_is_one_job_however_often_scheduler_retries(world: World) -> None:
    body = {
        "name": "hourly",
        "expression": "rate(1 hour)",
        "job": {"type": "demo", "params": {"items": 1}},
    }
    _, schedule = world.call("POST", "/schedules", body)
    schedule_id = schedule["scheduleId"]
    due = "2026-01-01T01:00:00Z"
    event = {
        "kind": "schedule",
        "tenantId": "acme",
        "scheduleId": schedule_id,
        "scheduledTime": due,
    }

    answers = [world.launch(event) for _ in range(3)]

    expected = run_job_id(schedule_id, datetime(2026, 1, 1, 1, tzinfo=UTC))
    assert {a["jobId"] for a in answers} == {expected}
    assert world.executions.started == [expected]
    _, state = world.call("GET", f"/schedules/{schedule_id}")
    assert [(r["jobId"], r["scheduledFor"]) for r in state["runs"]] == [(expected, due)]
    assert state["lastRunAt"] == due
    job = world.jobs.get(JobRef("acme", expected))
    assert (job.owner_id, job.schedule and job.schedule.schedule_id) == ("alice", schedule_id)


def test_a_deleted_schedule_or_job_is_acknowledged_not_raised(world: World) -> None:
    gone = world.launch({"kind": "schedule", "tenantId": "acme", "scheduleId": "s_gone"})
    assert gone == {"launched": False, "reason": "schedule_not_found"}
    assert world.launch({"kind": "job", "tenantId": "acme", "jobId": "j_gone"})["launched"] is False
    assert world.executions.started == []


def test_an_object_under_a_tenants_import_prefix_starts_a_csv_import_once(world: World) -> None:
    event = _s3_event("imports/acme/contacts.csv")

    first = world.launch(event)
    again = world.launch(event)  # EventBridge delivers at least once

    assert (first["launched"], first["tenantId"]) == (True, "acme")
    assert again["jobId"] == first["jobId"]
    assert world.executions.started == [first["jobId"]]
    job = world.jobs.get(JobRef("acme", first["jobId"]))
    assert (job.type, job.owner_id) == ("csv_import", "trigger:s3")
    assert job.params == {"bucket": "tether-imports", "key": "imports/acme/contacts.csv"}
    # A new version of the same object is a new import
    newer = world.launch(_s3_event("imports/acme/contacts.csv", sequencer="0062E99A88DC407999"))
    assert newer["jobId"] != first["jobId"]
    # Keys outside a tenant's prefix start nothing
    for key in ("other/acme/x.csv", "imports/acme", "imports/bad tenant/x.csv"):
        assert world.launch(_s3_event(key)) == {"launched": False}


def test_an_event_that_is_no_launch_tether_scheduled_is_refused_clearly(world: World) -> None:
    # Given what EventBridge Scheduler sends for a schedule without Tether's input (its own
    # `Scheduled Event`, as a schedule made in the console would), and a launch missing fields
    scheduler_default = {
        "version": "0",
        "id": "d167b752-343a-4b28-afd6-d4de056319e8",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": "2025-02-20T16:03:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/aaaaa"],
        "detail": "{}",
    }
    truncated = {"kind": "schedule"}

    # When they reach the launcher / Then each is refused as a validation failure, not raised
    # (Scheduler would retry it for nothing), and nothing is started
    for event in (scheduler_default, truncated):
        assert world.launch(event) == {"launched": False, "reason": "validation_failed"}
    assert world.executions.started == []
