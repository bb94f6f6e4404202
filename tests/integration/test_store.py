"""The DynamoDB job store and the job use cases against moto."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from shared.domain import lifecycle
from shared.domain.envelope import MessageType
from shared.domain.errors import (
    IllegalTransition,
    InvalidCursor,
    JobAlreadyExists,
    JobNotFound,
    MessagesExpired,
    StaleJob,
)
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobError, JobRequest, JobStatus, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.ports import JobFilter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from shared.adapters.dynamo_jobs import DynamoJobStore
    from shared.domain.clock import ManualClock
    from shared.domain.models import JobRecord

TENANT = "acme"
OTHER = "globex"


def _create(service: JobService, tenant: str = TENANT, **fields: object) -> JobRecord:
    return service.create_job(
        JobRequest.model_validate({"type": "demo", **fields}), tenant_id=tenant, owner_id="u1"
    )


def _ref(job: JobRecord) -> JobRef:
    return JobRef(job.tenant_id, job.job_id)


def _log(service: JobService, job: JobRecord) -> list[tuple[int, str, str | None]]:
    page = service.messages_after(_ref(job), 0, limit=100)
    return [(m.seq or 0, m.type.value, m.data.get("status")) for m in page.messages]


def test_create_writes_the_job_and_its_first_status_message(service: JobService) -> None:
    # Given / When
    job = _create(service, params={"items": 3}, priority="high")

    # Then
    stored = service.get(_ref(job))
    assert stored == job
    assert (stored.status, stored.seq, stored.version) == (JobStatus.QUEUED, 1, 1)
    assert _log(service, job) == [(1, "status", "queued")]


def test_a_future_schedule_creates_a_scheduled_job(service: JobService, clock: ManualClock) -> None:
    later = clock.now() + timedelta(hours=2)
    job = _create(service, schedule={"scheduledFor": later.isoformat()})
    assert job.status is JobStatus.SCHEDULED
    assert service.get(_ref(job)).schedule is not None


def test_inserting_an_existing_id_is_refused(service: JobService, store: DynamoJobStore) -> None:
    job = _create(service)
    with pytest.raises(JobAlreadyExists):
        store.insert(JobChange(job))


def test_full_run_numbers_the_log_without_gaps(service: JobService, clock: ManualClock) -> None:
    # Given a job that runs three batches, one of them coalesced
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=30, execution_arn="arn:exec:1")
    clock.advance(seconds=1)
    service.report_progress(ref, ProgressDelta(succeeded=10))
    clock.advance(milliseconds=100)  # too soon: counted, not announced
    service.report_progress(ref, ProgressDelta(succeeded=9, failed=1))
    clock.advance(milliseconds=100)

    # When it completes
    done = service.complete(ref, {"imported": 19})

    # Then the pending counters were announced right before the terminal status
    assert done.status is JobStatus.COMPLETED
    assert done.counters.processed == 20
    assert done.finished_at == clock.now()
    assert _log(service, job) == [
        (1, "status", "queued"),
        (2, "status", "running"),
        (3, "progress", None),
        (4, "progress", None),
        (5, "status", "completed"),
    ]
    last_progress = service.messages_after(ref, 3).messages[0]
    assert last_progress.data["processed"] == 20
    assert last_progress.data["failed"] == 1
    final = service.messages_after(ref, 4).messages[0]
    assert final.data["result"] == {"imported": 19}
    assert done.seq == 5


def test_illegal_transition_writes_nothing(service: JobService) -> None:
    # Given a queued job
    job = _create(service)
    ref = _ref(job)

    # When the runner tries to complete it without starting it
    with pytest.raises(IllegalTransition) as raised:
        service.complete(ref, {})

    # Then neither the job nor the log changed, and the error names the status
    assert raised.value.current is JobStatus.QUEUED
    assert service.get(ref) == job
    assert _log(service, job) == [(1, "status", "queued")]
    with pytest.raises(IllegalTransition):
        service.report_progress(ref, ProgressDelta(succeeded=1))
    assert service.get(ref) == job


def test_a_failed_transaction_leaves_job_and_log_untouched(
    service: JobService,
    store: DynamoJobStore,
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
) -> None:
    # Given a job, and a message already sitting at the seq its next change will use
    job = _create(service)
    dynamodb.put_item(
        TableName=table_names["messages"],
        Item={"jobKey": {"S": f"{TENANT}#{job.job_id}"}, "seq": {"N": "2"}, "squatter": {"S": "x"}},
    )
    change = lifecycle.start(job, job.updated_at, total=5, execution_arn=None)

    # When the store commits the change, the message put fails inside the transaction
    with pytest.raises(StaleJob):
        store.commit(change)

    # Then the job item did not move to running either
    assert service.get(_ref(job)) == job
    item = dynamodb.get_item(
        TableName=table_names["messages"],
        Key={"jobKey": {"S": f"{TENANT}#{job.job_id}"}, "seq": {"N": "2"}},
    )["Item"]
    assert "squatter" in item


def test_a_stale_writer_retries_against_the_current_record(
    service: JobService, store: DynamoJobStore
) -> None:
    # Given two copies of one job, one of which goes stale
    job = _create(service)
    ref = _ref(job)
    stale = service.get(ref)
    service.start(ref, total=10)

    # When a progress report is computed from the stale copy
    after = service.report_progress(ref, ProgressDelta(succeeded=2), current=stale)

    # Then it was recomputed on the running job, not lost and not applied twice
    assert after.status is JobStatus.RUNNING
    assert after.counters.succeeded == 2
    assert service.get(ref) == after


def test_a_change_without_messages_from_a_stale_version_is_refused(
    service: JobService, store: DynamoJobStore, clock: ManualClock
) -> None:
    # Given a running job and two changes computed from the same version that add no message
    # (no seq can collide: only the version condition stands between them)
    job = _create(service)
    ref = _ref(job)
    running = service.start(ref, total=10)
    error = JobError(code="item_unavailable", message="try again")
    first = lifecycle.record_attempt(running, clock.now(), error=error, wait_ms=1000)
    second = lifecycle.record_attempt(running, clock.now(), error=error, wait_ms=2000)
    assert first.messages == second.messages == ()

    # When both are committed
    store.commit(first)
    with pytest.raises(StaleJob):
        store.commit(second)

    # Then the first stands and the second was not written over it
    assert service.get(ref).attempts == first.job.attempts


def test_cancel_twice_writes_one_status_message(service: JobService) -> None:
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=3)

    first = service.request_cancel(ref)
    second = service.request_cancel(ref)

    assert first == second
    assert first.cancel_requested
    assert first.status is JobStatus.RUNNING
    log = _log(service, job)
    assert log == [(1, "status", "queued"), (2, "status", "running"), (3, "status", "running")]
    assert service.messages_after(ref, 2).messages[0].data["cancelRequested"] is True

    # and the runner's control check then finishes it, once
    service.finish_cancelled(ref)
    with pytest.raises(IllegalTransition):
        service.finish_cancelled(ref)
    assert service.request_cancel(ref).status is JobStatus.CANCELLED
    assert len(_log(service, job)) == 4


def test_cancel_of_a_queued_job_ends_it_at_once(service: JobService) -> None:
    job = _create(service)
    cancelled = service.request_cancel(_ref(job))
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at is not None


def test_cancel_of_a_finished_job_is_a_conflict(service: JobService) -> None:
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=1)
    service.fail(ref, JobError(code="boom", message="it broke"))
    with pytest.raises(IllegalTransition):
        service.request_cancel(ref)


def test_pause_and_resume(service: JobService) -> None:
    job = _create(service)
    ref = _ref(job)
    with pytest.raises(IllegalTransition):
        service.pause(ref)  # queued: nothing to pause yet
    service.start(ref, total=3)

    requested = service.pause(ref)
    assert requested.pause_requested
    assert service.pause(ref) == requested  # idempotent
    paused = service.mark_paused(ref)
    assert paused.status is JobStatus.PAUSED
    assert service.pause(ref) == paused
    resumed = service.resume(ref)
    assert (resumed.status, resumed.pause_requested) == (JobStatus.RUNNING, False)
    assert service.resume(ref) == resumed
    assert [entry[2] for entry in _log(service, job)] == [
        "queued",
        "running",
        "running",
        "paused",
        "running",
    ]


def test_tenants_never_see_each_other(service: JobService) -> None:
    # Given a job of one tenant
    job = _create(service)
    intruder = JobRef(OTHER, job.job_id)

    # Then, for another tenant, it does not exist at all: get, control, messages, delete, list
    with pytest.raises(JobNotFound):
        service.get(intruder)
    with pytest.raises(JobNotFound):
        service.request_cancel(intruder)
    with pytest.raises(JobNotFound):
        service.messages_after(intruder, 0)
    with pytest.raises(JobNotFound):
        service.delete(intruder)
    assert service.list(OTHER, JobFilter()).jobs == []
    with pytest.raises(JobNotFound):
        service.start(intruder, total=1, current=job)  # a record of another tenant is no key
    assert service.get(_ref(job)).status is JobStatus.QUEUED


def test_expired_messages_are_not_served(service: JobService, clock: ManualClock) -> None:
    # Given a job with two messages, then a third written a day later
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=2)
    clock.advance(hours=23)
    service.report_progress(ref, ProgressDelta(succeeded=1))

    # When 24 h have passed since the first two (moto never deletes them)
    clock.advance(hours=1, seconds=1)

    # Then reading from the start says honestly that the log cannot fill the gap
    with pytest.raises(MessagesExpired) as raised:
        service.messages_after(ref, 0)
    assert raised.value.oldest_available == 3
    # but the tail is still there
    assert [m.seq for m in service.messages_after(ref, 2).messages] == [3]
    # and a different epoch is always a resync
    with pytest.raises(MessagesExpired):
        service.messages_after(ref, 2, epoch="another-generation")


def test_messages_after_pages_in_order(service: JobService, clock: ManualClock) -> None:
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=10)
    for _ in range(10):
        clock.advance(seconds=1)
        service.report_progress(ref, ProgressDelta(succeeded=1))

    first = service.messages_after(ref, 0, limit=5)
    second = service.messages_after(ref, first.last_seq or 0, limit=100)

    assert [m.seq for m in first.messages] == [1, 2, 3, 4, 5]
    assert first.has_more
    assert [m.seq for m in second.messages] == list(range(6, 13))
    assert service.messages_after(ref, 12).messages == []


def test_list_filters_and_paginates_with_a_signed_cursor(
    service: JobService, clock: ManualClock
) -> None:
    # Given five jobs, two of them running, and one of another tenant
    jobs = []
    for _ in range(5):
        clock.advance(seconds=1)
        jobs.append(_create(service))
    _create(service, tenant=OTHER)
    for job in jobs[:2]:
        service.start(_ref(job), total=1)

    # When listing two at a time
    first = service.list(TENANT, JobFilter(), limit=2)
    assert first.next_cursor is not None
    second = service.list(TENANT, JobFilter(), limit=2, cursor=first.next_cursor)
    third = service.list(TENANT, JobFilter(), limit=2, cursor=second.next_cursor)

    # Then every job comes once, newest first
    listed = [j.job_id for page in (first, second, third) for j in page.jobs]
    assert listed == [j.job_id for j in reversed(jobs)]
    running = service.list(TENANT, JobFilter(status=JobStatus.RUNNING))
    assert {j.job_id for j in running.jobs} == {jobs[0].job_id, jobs[1].job_id}
    assert len(service.list(TENANT, JobFilter(type="demo")).jobs) == 5
    both = service.list(TENANT, JobFilter(status=JobStatus.QUEUED, type="demo"))
    assert len(both.jobs) == 3
    assert service.list(TENANT, JobFilter(status=JobStatus.QUEUED, type="csv_import")).jobs == []

    # and a cursor is useless tampered with, under another filter, or for another tenant
    body, signature = first.next_cursor.split(".")
    with pytest.raises(InvalidCursor):
        service.list(TENANT, JobFilter(), cursor=f"{body}x.{signature}")
    with pytest.raises(InvalidCursor):
        service.list(TENANT, JobFilter(status=JobStatus.RUNNING), cursor=first.next_cursor)
    with pytest.raises(InvalidCursor):
        service.list(OTHER, JobFilter(), cursor=first.next_cursor)
    with pytest.raises(InvalidCursor):
        service.list(TENANT, JobFilter(), cursor="not-a-cursor")


def test_the_last_full_page_of_jobs_has_no_cursor(service: JobService, clock: ManualClock) -> None:
    # Given four jobs, two of them running (DynamoDB returns a LastEvaluatedKey whenever a
    # page stops at its Limit, even when nothing follows: the strict layer does the same)
    jobs = []
    for _ in range(4):
        clock.advance(seconds=1)
        jobs.append(_create(service))
    for job in jobs[:2]:
        service.start(_ref(job), total=1)

    # When listing two at a time, Then the second page is the last: no cursor to an empty page
    first = service.list(TENANT, JobFilter(), limit=2)
    second = service.list(TENANT, JobFilter(), limit=2, cursor=first.next_cursor)
    assert [j.job_id for j in first.jobs + second.jobs] == [j.job_id for j in reversed(jobs)]
    assert first.next_cursor is not None
    assert second.next_cursor is None
    # and the same through an index, and through an index with a filter
    running = service.list(TENANT, JobFilter(status=JobStatus.RUNNING), limit=2)
    assert (len(running.jobs), running.next_cursor) == (2, None)
    queued = JobFilter(status=JobStatus.QUEUED, type="demo")
    both = service.list(TENANT, queued, limit=2)
    assert (len(both.jobs), both.next_cursor) == (2, None)
    one = service.list(TENANT, queued, limit=1)
    rest = service.list(TENANT, queued, limit=1, cursor=one.next_cursor)
    assert [j.job_id for j in one.jobs + rest.jobs] == [jobs[3].job_id, jobs[2].job_id]
    assert rest.next_cursor is None


def test_a_cursor_past_the_end_gives_an_empty_page_without_a_cursor(
    service: JobService, clock: ManualClock
) -> None:
    # Given a cursor issued while a third job still followed
    jobs = []
    for _ in range(3):
        clock.advance(seconds=1)
        jobs.append(_create(service))
    first = service.list(TENANT, JobFilter(), limit=2)
    assert first.next_cursor is not None

    # When that job is deleted before the next page is read
    service.request_cancel(_ref(jobs[0]))
    service.delete(_ref(jobs[0]))
    after = service.list(TENANT, JobFilter(), limit=2, cursor=first.next_cursor)

    # Then the listing ends there
    assert (after.jobs, after.next_cursor) == ([], None)


def test_a_log_page_that_ends_at_the_head_has_no_more(service: JobService) -> None:
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=2)
    service.report_progress(ref, ProgressDelta(succeeded=1))  # seq 1 queued, 2 running, 3

    exact = service.messages_after(ref, 0, limit=3)
    short = service.messages_after(ref, 0, limit=2)

    assert ([m.seq for m in exact.messages], exact.has_more) == ([1, 2, 3], False)
    assert ([m.seq for m in short.messages], short.has_more) == ([1, 2], True)


def test_delete_removes_a_finished_job_and_its_log(
    service: JobService, clock: ManualClock, dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    job = _create(service)
    ref = _ref(job)
    service.start(ref, total=40)
    for _ in range(40):  # more messages than one BatchWriteItem takes
        clock.advance(seconds=1)
        service.report_progress(ref, ProgressDelta(succeeded=1))

    with pytest.raises(IllegalTransition):
        service.delete(ref)  # still running

    service.complete(ref)
    service.delete(ref)

    with pytest.raises(JobNotFound):
        service.get(ref)
    left = dynamodb.query(
        TableName=table_names["messages"],
        KeyConditionExpression="jobKey = :k",
        ExpressionAttributeValues={":k": {"S": f"{TENANT}#{job.job_id}"}},
    )
    assert left["Count"] == 0


def test_terminal_jobs_and_messages_carry_their_ttl(
    service: JobService, clock: ManualClock, dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    job = _create(service)
    ref = _ref(job)
    live = dynamodb.get_item(
        TableName=table_names["jobs"], Key={"tenantId": {"S": TENANT}, "jobId": {"S": job.job_id}}
    )["Item"]
    assert "expiresAt" not in live
    assert live["queueTenant"] == {"S": TENANT}

    finished = service.request_cancel(ref)

    item = dynamodb.get_item(
        TableName=table_names["jobs"], Key={"tenantId": {"S": TENANT}, "jobId": {"S": job.job_id}}
    )["Item"]
    assert finished.finished_at is not None
    assert int(item["expiresAt"]["N"]) == int(finished.finished_at.timestamp()) + 30 * 24 * 3600
    assert "queueTenant" not in item
    message = dynamodb.get_item(
        TableName=table_names["messages"],
        Key={"jobKey": {"S": f"{TENANT}#{job.job_id}"}, "seq": {"N": "1"}},
    )["Item"]
    assert int(message["expiresAt"]["N"]) == int(clock.now().timestamp()) + 24 * 3600
    assert message["type"] == {"S": MessageType.STATUS.value}
