"""The hourly cleanup: exactly what expired goes, dead executions fail, slots are
reconciled; at most once per interval, clock jumps do not block it, two at once are safe."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from shared import constants as c
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_limits import DynamoLease, DynamoRunSlots
from shared.domain.auth import Principal, Scope
from shared.domain.errors import JobNotFound
from shared.domain.models import JobRequest, JobStatus
from shared.schedule_wiring import CLEANUP_LEASE_NAME
from shared.services.jobs import JobRef
from tests.integration.scheduling import GROUP, World


def _job(world: World, priority: str = "normal") -> str:
    world.clock.advance(seconds=1)
    status, created = world.call(
        "POST", "/jobs", {"type": "demo", "params": {"items": 1}, "priority": priority}
    )
    assert status == 202
    return str(created["job"]["jobId"])


def _finished_job(world: World) -> str:
    job_id = _job(world)
    world.start("acme", job_id)
    world.finish("acme", job_id)
    return job_id


def _message_count(world: World, job_id: str) -> int:
    answer = world.client.query(
        TableName=world.tables["messages"],
        KeyConditionExpression="jobKey = :key",
        ExpressionAttributeValues={":key": {"S": f"acme#{job_id}"}},
        Select="COUNT",
    )
    return int(answer["Count"])


def _device(world: World, device_id: str, enabled: bool | None) -> None:
    item: dict[str, Any] = {"ownerKey": {"S": "acme#alice"}, "deviceId": {"S": device_id}}
    if enabled is not None:
        item["enabled"] = {"BOOL": enabled}
    world.client.put_item(TableName=world.tables["devices"], Item=item)


def _devices(world: World) -> set[str]:
    items = world.client.scan(TableName=world.tables["devices"])["Items"]
    return {item["deviceId"]["S"] for item in items}


def test_cleanup_removes_exactly_what_expired_and_fails_dead_executions(world: World) -> None:
    # Given a job that ended 31 days ago and one that ended 11 days ago
    old = _finished_job(world)
    assert _message_count(world, old) > 0
    world.clock.advance(days=20)
    recent = _finished_job(world)
    # And two running jobs holding acme's two slots (one execution died), and one waiting
    alive, dead, waiting = _job(world), _job(world), _job(world, "high")
    world.start("acme", alive)
    dead_job = world.start("acme", dead)
    assert dead_job.execution_arn is not None
    world.executions.statuses[dead_job.execution_arn] = "FAILED"
    # And connections (one past its expiry), devices (one disabled), a leaked slot of a ghost
    connections = DynamoConnectionStore(world.client, world.tables["connections"])
    owner = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))
    connections.connect("stale", owner, world.clock.now())
    world.clock.advance(days=11)
    connections.connect("live", owner, world.clock.now())
    for device_id, enabled in [("off", False), ("on", True), ("new", None)]:
        _device(world, device_id, enabled)
    slots = DynamoRunSlots(world.client, world.tables["limits"])
    assert slots.acquire("globex", "j_ghost", limit=2)

    # When the hourly cleanup runs
    report = world.run_cleanup()

    # Then it purged the expired job with its messages, and nothing else
    assert report["ran"] is True
    assert report["purged_jobs"] == 1
    with pytest.raises(JobNotFound):
        world.jobs.get(JobRef("acme", old))
    assert _message_count(world, old) == 0
    assert world.jobs.get(JobRef("acme", recent)).status is JobStatus.COMPLETED
    assert _message_count(world, recent) > 0
    # And it failed the job whose execution died, which freed its slot for the waiting job
    failed = world.jobs.get(JobRef("acme", dead))
    assert (failed.status, failed.error and failed.error.code) == (
        JobStatus.FAILED,
        "execution_ended",
    )
    assert report["failed_jobs"] == [dead]
    assert world.jobs.get(JobRef("acme", alive)).status is JobStatus.RUNNING
    assert world.executions.started[-1] == waiting
    assert slots.holders() == {"acme": {alive, waiting}}
    assert report["released_slots"] == ["j_ghost"]
    # And stale connections and disabled devices are gone, live ones stay
    assert (report["purged_connections"], report["purged_devices"]) == (1, 1)
    assert connections.get("stale", world.clock.now()) is None
    assert connections.get("live", world.clock.now()) is not None
    assert _devices(world) == {"on", "new"}


def test_cleanup_runs_at_most_once_per_interval_and_after_the_clock_moved_back(
    world: World,
) -> None:
    start = world.clock.now()
    # The first invocation runs; one ten minutes later does not
    assert world.run_cleanup()["ran"] is True
    world.clock.advance(minutes=10)
    skipped = world.run_cleanup()
    assert (skipped["ran"], skipped["reason"]) == (False, "ran less than an interval ago")
    # An hour after the last run (EventBridge may be a few seconds early) it runs again
    world.clock.set(start + timedelta(minutes=59, seconds=30))
    assert world.run_cleanup()["ran"] is True

    # When the clock moves back two hours, the recorded run lies in the future: it still runs
    world.clock.set(start - timedelta(hours=2))
    assert world.run_cleanup()["ran"] is True
    # And the interval counts from that run
    world.clock.advance(minutes=30)
    assert world.run_cleanup()["ran"] is False
    lease = DynamoLease(world.client, world.tables["limits"], CLEANUP_LEASE_NAME)
    assert lease.last_run() == start - timedelta(hours=2)


def test_a_held_lease_blocks_a_second_cleanup_until_it_expires(world: World) -> None:
    lease = DynamoLease(world.client, world.tables["limits"], CLEANUP_LEASE_NAME)
    assert lease.acquire("crashed-run", world.clock.now(), seconds=15 * 60)

    blocked = world.run_cleanup()
    assert (blocked["ran"], blocked["reason"]) == (False, "another cleanup holds the lease")

    world.clock.advance(minutes=16)  # the crashed holder's lease expired
    assert world.run_cleanup()["ran"] is True


def test_two_cleanups_at_once_run_once(world: World) -> None:
    old = _finished_job(world)
    world.clock.advance(days=31)
    barrier = threading.Barrier(2)
    reports: list[dict[str, Any]] = []

    def invoke(request_id: str) -> None:
        barrier.wait()
        reports.append(world.run_cleanup(request_id))

    threads = [threading.Thread(target=invoke, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(report["ran"] for report in reports) == [False, True]
    assert sum(report["purged_jobs"] for report in reports) == 1
    with pytest.raises(JobNotFound):
        world.jobs.get(JobRef("acme", old))


def test_a_slot_holder_whose_launch_failed_is_launched_again(world: World) -> None:
    # Given a queued job that took a slot but whose execution never started (launch failed)
    job = world.jobs.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
    assert DynamoRunSlots(world.client, world.tables["limits"]).acquire("acme", job.job_id, limit=2)
    assert world.executions.started == []

    # When the cleanup reconciles the slots
    report = world.run_cleanup()

    # Then the job is launched again (idempotent on its execution name), keeping its slot
    assert report["relaunched_jobs"] == [job.job_id]
    assert world.executions.started == [job.job_id]


def test_cancelling_a_slot_holder_whose_launch_failed_frees_its_slot_at_once(world: World) -> None:
    # Given a queued job that took a slot but whose execution never started, and another
    # job of the tenant waiting behind the full cap
    jobs = [
        world.jobs.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
        for _ in range(3)
    ]
    slots = DynamoRunSlots(world.client, world.tables["limits"])
    assert slots.acquire("acme", jobs[0].job_id, limit=2)
    assert slots.acquire("acme", jobs[1].job_id, limit=2)
    assert world.executions.started == []

    # When the first one is cancelled
    cancelled = world.runner.cancel(JobRef("acme", jobs[0].job_id))

    # Then it ended at once and its slot went to the waiting job, without waiting for the
    # hourly cleanup (nothing else would ever give it back: no execution will finalize it)
    assert cancelled.status is JobStatus.CANCELLED
    assert _holders(world) == {"acme": {jobs[1].job_id, jobs[2].job_id}}
    assert jobs[2].job_id in world.executions.started
    assert jobs[0].job_id not in world.executions.started


# -- closed executions and launches that never came (real executions on moto) -----------------


def _executions(world: World) -> dict[str, str]:
    """Every execution of the runner: name -> status."""
    machine = world.sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    listed = world.sfn.list_executions(stateMachineArn=machine)["executions"]
    return {execution["name"]: execution["status"] for execution in listed}


def _holders(world: World) -> dict[str, set[str]]:
    return DynamoRunSlots(world.client, world.tables["limits"]).holders()


def test_a_queued_job_whose_execution_closed_is_relaunched_under_a_new_name(
    sfn_world: World,
) -> None:
    # Given a queued job holding a slot, whose execution closed before it started the job
    world = sfn_world
    job_id = _job(world)
    ref = JobRef("acme", job_id)
    first = world.jobs.get(ref)
    assert first.status is JobStatus.QUEUED
    assert first.execution_arn is not None
    assert first.execution_arn.endswith(f":{job_id}-g0")
    world.sfn.stop_execution(executionArn=first.execution_arn)

    # When the hourly cleanup runs
    report = world.run_cleanup()

    # Then a new execution runs under the run's next name, recorded on the job
    assert _executions(world) == {f"{job_id}-g0": "ABORTED", f"{job_id}-g0-r1": "RUNNING"}
    job = world.jobs.get(ref)
    assert job.status is JobStatus.QUEUED
    assert job.execution_arn == first.execution_arn.replace("-g0", "-g0-r1")
    assert report["relaunched_jobs"] == [job_id]
    assert report["failed_jobs"] == []
    # And the job still holds exactly its one slot
    assert _holders(world) == {"acme": {job_id}}

    # When the cleanup runs an hour later, the running execution is left alone
    world.clock.advance(hours=1)
    again = world.run_cleanup()
    assert (again["ran"], again["relaunched_jobs"]) == (True, [])
    assert _executions(world) == {f"{job_id}-g0": "ABORTED", f"{job_id}-g0-r1": "RUNNING"}


def test_two_relaunches_at_once_start_one_execution(sfn_world: World) -> None:
    # Given a queued job whose execution closed
    world = sfn_world
    job_id = _job(world)
    ref = JobRef("acme", job_id)
    world.sfn.stop_execution(executionArn=world.jobs.get(ref).execution_arn)
    barrier = threading.Barrier(2)
    arns: list[str] = []

    def relaunch() -> None:
        barrier.wait()
        arns.append(world.runner.launch(ref))

    # When two launchers relaunch it at the same moment
    threads = [threading.Thread(target=relaunch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then both found the same new execution, the only one running
    assert len(arns) == 2
    assert arns[0] == arns[1]
    assert _executions(world) == {f"{job_id}-g0": "ABORTED", f"{job_id}-g0-r1": "RUNNING"}
    assert world.jobs.get(ref).execution_arn == arns[0]
    assert _holders(world) == {"acme": {job_id}}


def test_a_job_whose_executions_keep_closing_fails_and_frees_its_slot(sfn_world: World) -> None:
    # Given acme's two slots held by a job and a queued job whose executions all closed
    world = sfn_world
    steady, doomed, waiting = _job(world), _job(world), _job(world)
    ref = JobRef("acme", doomed)
    for _ in range(c.MAX_EXECUTION_ATTEMPTS - 1):
        world.sfn.stop_execution(executionArn=world.jobs.get(ref).execution_arn)
        world.runner.launch(ref)
    world.sfn.stop_execution(executionArn=world.jobs.get(ref).execution_arn)
    assert _holders(world) == {"acme": {steady, doomed}}

    # When it is launched once more
    world.runner.launch(ref)

    # Then it fails with a clear error, its slot goes to the waiting job
    job = world.jobs.get(ref)
    assert (job.status, job.error and job.error.code) == (JobStatus.FAILED, "launch_failed")
    assert _holders(world) == {"acme": {steady, waiting}}
    names = _executions(world)
    assert sum(name.startswith(doomed) for name in names) == c.MAX_EXECUTION_ATTEMPTS
    assert {status for name, status in names.items() if name.startswith(doomed)} == {"ABORTED"}
    assert names[f"{waiting}-g0"] == "RUNNING"


def test_a_scheduled_job_whose_launch_never_came_starts_late(sfn_world: World) -> None:
    # Given a job for 09:00 whose one-time schedule fired, failed and was dropped by Scheduler
    world = sfn_world
    due = world.clock.now() + timedelta(minutes=10)
    status, created = world.call(
        "POST",
        "/jobs",
        {
            "type": "demo",
            "params": {"items": 1},
            "schedule": {"scheduledFor": due.isoformat()},
        },
    )
    assert status == 202
    job_id = created["job"]["jobId"]
    world.scheduler.delete_schedule(GroupName=GROUP, Name=f"job-{job_id}")

    # When the cleanup runs while Scheduler could still be retrying (an hour after 09:00)
    world.clock.set(due + timedelta(hours=1))
    early = world.run_cleanup()

    # Then the job still waits for Scheduler
    assert early["late_scheduled_jobs"] == []
    assert world.jobs.get(JobRef("acme", job_id)).status is JobStatus.SCHEDULED

    # When the next hourly cleanup runs, Scheduler's retries over
    world.clock.advance(hours=1)
    report = world.run_cleanup()

    # Then the job is queued and launched, late, holding a slot
    assert report["late_scheduled_jobs"] == [job_id]
    job = world.jobs.get(JobRef("acme", job_id))
    assert job.status is JobStatus.QUEUED
    assert _executions(world) == {f"{job_id}-g0": "RUNNING"}
    assert job.execution_arn is not None
    assert job.execution_arn.endswith(f":{job_id}-g0")
    assert _holders(world) == {"acme": {job_id}}
    # And a dead letter redriven now (the launcher invoked with Scheduler's input) changes nothing
    answer = world.launch({"kind": "job", "tenantId": "acme", "jobId": job_id})
    assert (answer["status"], answer["admitted"]) == ("queued", True)
    assert _executions(world) == {f"{job_id}-g0": "RUNNING"}
    assert world.jobs.get(JobRef("acme", job_id)).version == job.version
