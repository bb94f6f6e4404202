"""The local stack's tables across an unclean stop: snapshot + write journal + epochs.

moto in server mode (`LocalAws`) with `LocalState` over a temporary folder; a "kill" is the
journal's file left exactly as a SIGKILL leaves it (every write done, no clean stop: the
marker stays), then a start in the same process over a reset moto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local import journal
from infra.local.aws import LocalAws
from infra.local.persistence import LocalState
from infra.local.recovery import Recovered, recover
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames, job_from_item
from shared.domain.clock import ManualClock, RandomIds
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.ports import SchedulerEntry
from tests.integration.conftest import CURSOR_SECRET

PREFIX = "persist"


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    local = LocalAws(port=0).start()
    local.reset()
    try:
        yield local
    finally:
        journal.activate(None)
        local.stop()


def _service(aws: LocalAws, tables: dict[str, str]) -> JobService:
    store = DynamoJobStore(
        aws.dynamodb(),
        TableNames(jobs=tables["jobs"], messages=tables["messages"]),
        CursorCodec(CURSOR_SECRET),
    )
    return JobService(
        store, clock=ManualClock(), ids=RandomIds(), progress_min_interval=timedelta(0)
    )


def _everything(aws: LocalAws, tables: dict[str, str]) -> dict[str, list[str]]:
    return {
        key: sorted(json.dumps(item, sort_keys=True) for item in aws.table_items(name))
        for key, name in tables.items()
    }


def _kill(state: LocalState) -> None:
    """What SIGKILL leaves: the journal's writes, no clean stop (the marker stays)."""
    assert state.writer is not None
    journal.activate(None)
    state.writer.close()
    state.writer = None


def _restart(aws: LocalAws, state_dir: Path) -> tuple[LocalState, dict[str, str]]:
    aws.reset()
    tables = aws.create_tables(PREFIX)
    return LocalState(state_dir, aws, tables), tables


def _busy_tables(aws: LocalAws, tables: dict[str, str]) -> tuple[str, str]:
    """A finished job and a running one, each write kind, one failed transaction."""
    service = _service(aws, tables)
    done = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="a")
    service.start(JobRef("acme", done.job_id), total=1)
    service.report_progress(JobRef("acme", done.job_id), ProgressDelta(succeeded=1))
    service.complete(JobRef("acme", done.job_id), result={"ok": True})
    running = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="a")
    ref = JobRef("acme", running.job_id)
    job = service.start(ref, total=10)
    for _ in range(3):
        job = service.report_progress(ref, ProgressDelta(succeeded=1), current=job)
    client = aws.dynamodb()
    connections = tables["connections"]
    client.put_item(TableName=connections, Item={"pk": {"S": "c1"}, "sk": {"S": "META"}})
    client.update_item(
        TableName=connections,
        Key={"pk": {"S": "c1"}, "sk": {"S": "META"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    client.batch_write_item(
        RequestItems={
            connections: [
                {"PutRequest": {"Item": {"pk": {"S": "c2"}, "sk": {"S": "META"}}}},
                {"PutRequest": {"Item": {"pk": {"S": "c3"}, "sk": {"S": "META"}}}},
            ]
        }
    )
    client.delete_item(TableName=connections, Key={"pk": {"S": "c2"}, "sk": {"S": "META"}})
    with pytest.raises(ClientError):  # a lost race: nothing of it may be replayed
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": connections, "Item": {"pk": {"S": "c9"}, "sk": {"S": "x"}}}},
                {
                    "ConditionCheck": {
                        "TableName": connections,
                        "Key": {"pk": {"S": "c1"}, "sk": {"S": "META"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    return done.job_id, running.job_id


def test_a_kill_loses_no_write_the_journal_acknowledged(aws: LocalAws, tmp_path: Path) -> None:
    # Given a stack that snapshotted halfway, then went on writing, then was killed
    tables = aws.create_tables(PREFIX)
    state = LocalState(tmp_path, aws, tables)
    state.open()
    _busy_tables(aws, tables)
    saved = state.save()
    _busy_tables(aws, tables)
    before = _everything(aws, tables)
    _kill(state)

    # When it starts again over the same folder
    state, tables = _restart(aws, tmp_path)
    report = state.open()

    # Then every table is exactly as it was, from the snapshot plus the records after it,
    # the journal vouches for it all, and the running job keeps its epoch
    assert _everything(aws, tables) == before
    assert report.unclean_stop
    assert report.replayed is not None
    assert (report.replayed.intact, report.epochs_started) == (True, 0)
    assert report.replayed.records > 0
    assert [n for n in journal.segments(state.journal_dir) if n < saved.mark.segment] == []
    state.close()
    assert not state.marker.exists()


def test_a_torn_last_record_is_dropped_and_the_history_is_still_vouched_for(
    aws: LocalAws, tmp_path: Path
) -> None:
    # Given a killed stack whose last journal write was cut short
    tables = aws.create_tables(PREFIX)
    state = LocalState(tmp_path, aws, tables)
    state.open()
    _busy_tables(aws, tables)
    before = _everything(aws, tables)
    assert state.writer is not None
    newest = journal.segment_path(state.journal_dir, journal.segments(state.journal_dir)[-1])
    _kill(state)
    with newest.open("ab") as tail:
        tail.write(b'{"n": 999999, "c": [["jobs", {"tenantId"')

    # When it starts again
    state, tables = _restart(aws, tmp_path)
    report = state.open()

    # Then the torn write is ignored (nobody was answered about it) and nothing else changed
    assert _everything(aws, tables) == before
    assert report.replayed is not None
    assert (report.replayed.intact, report.epochs_started) == (True, 0)
    state.close()


@pytest.mark.parametrize("damage", ["record missing", "journal deleted"])
def test_history_the_journal_cannot_vouch_for_starts_a_new_epoch(
    aws: LocalAws, tmp_path: Path, damage: str
) -> None:
    # Given a killed stack whose journal lost a record, or was lost altogether
    tables = aws.create_tables(PREFIX)
    state = LocalState(tmp_path, aws, tables)
    state.open()
    state.save()
    done, running = _busy_tables(aws, tables)
    epochs = {job.job_id: job.epoch for job in _jobs(aws, tables)}
    segment = journal.segment_path(state.journal_dir, journal.segments(state.journal_dir)[-1])
    _kill(state)
    if damage == "record missing":
        lines = segment.read_bytes().splitlines(keepends=True)
        segment.write_bytes(b"".join(lines[:2] + lines[3:]))
    else:
        for number in journal.segments(state.journal_dir):
            journal.segment_path(state.journal_dir, number).unlink()

    # When it starts again
    state, tables = _restart(aws, tmp_path)
    report = state.open()

    # Then the unfinished job's log is a new generation (its seqs may be given out again),
    # the finished one keeps its epoch, and the new epoch is journaled like any write
    after = {job.job_id: job for job in _jobs(aws, tables)}
    assert report.epochs_started == (1 if damage == "record missing" else 0)
    if damage == "record missing":
        assert after[running].epoch != epochs[running]
        assert after[done].epoch == epochs[done]
        renewed = after[running].epoch
        _kill(state)
        state, tables = _restart(aws, tmp_path)
        again = state.open()
        assert again.epochs_started == 0
        assert {job.job_id: job.epoch for job in _jobs(aws, tables)}[running] == renewed
    else:
        assert after == {}  # only the empty snapshot was left: no job to reuse a seq of
    state.close()


def test_an_unreadable_item_is_skipped_counted_and_logged_never_fatal(
    aws: LocalAws, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a snapshot holding a good queued job, a mangled job (moto's `{"": 1}` as read
    # back over HTTP) and an item without its key
    tables = aws.create_tables(PREFIX)
    good = _service(aws, tables).create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="a")
    items = aws.table_items(tables["jobs"])
    mangled = {**items[0], "jobId": {"S": "j_mangled"}, "params": {"M": {"N": "1"}}}
    undecodable = {**items[0], "jobId": {"S": "j_strange"}, "params": {"Q": "1"}}
    keyless = {"status": {"S": "running"}}
    document = {"version": 1, "tables": {"jobs": [*items, mangled, undecodable, keyless]}}
    (tmp_path / "tables.json").write_text(json.dumps(document))
    state, tables = _restart(aws, tmp_path)

    # When the stack restores it and rebuilds its executions
    report = state.open(journal_writes=False)
    runner = _RecordingRunner()
    recovered = recover(aws.table_items, tables, runner=runner, scheduler=_NoScheduler())

    # Then the good job is back and admitted; the bad ones are skipped, each logged with
    # its key, and counted
    assert [s.key for s in report.skipped] == [
        {"tenantId": {"S": "acme"}, "jobId": {"S": "j_mangled"}},
        {},
    ]
    assert recovered == Recovered(jobs_relaunched=1, items_skipped=1)
    assert runner.admitted == [good.job_id]
    skipped = [r for r in caplog.records if r.getMessage() == "stored item skipped"]
    assert [getattr(r, "key", {}).get("jobId") for r in skipped] == [
        {"S": "j_mangled"},
        None,
        {"S": "j_strange"},
    ]


def test_an_answer_leaves_the_endpoint_only_once_its_writes_are_on_disk(
    aws: LocalAws, tmp_path: Path
) -> None:
    # Given a journal whose disk sync blocks until released
    syncing, release = threading.Event(), threading.Event()

    def slow_sync(_fd: int) -> None:
        syncing.set()
        release.wait(10)

    tables = aws.create_tables(PREFIX)
    writer = journal.WriteJournal(
        tmp_path, tables=tables, after=journal.JournalMark(), sync=slow_sync
    )
    journal.activate(writer)
    answered = threading.Event()

    def write() -> None:
        aws.dynamodb().put_item(
            TableName=tables["connections"], Item={"pk": {"S": "c"}, "sk": {"S": "META"}}
        )
        answered.set()

    # When a client writes while the sync is under way
    client = threading.Thread(target=write)
    client.start()
    assert syncing.wait(10)
    unanswered_while_syncing = not answered.is_set()
    release.set()
    client.join(10)

    # Then the answer waited for the sync
    assert unanswered_while_syncing
    assert answered.is_set()
    journal.activate(None)
    writer.close()


def _jobs(aws: LocalAws, tables: dict[str, str]) -> list[Any]:
    return [job_from_item(item) for item in aws.table_items(tables["jobs"])]


class _RecordingRunner:
    def __init__(self) -> None:
        self.admitted: list[str] = []

    def admit(self, ref: JobRef) -> None:
        self.admitted.append(ref.job_id)

    def launch(self, ref: JobRef) -> None:
        raise AssertionError(f"nothing runs here: {ref}")


class _NoScheduler:
    def put(self, entry: SchedulerEntry) -> None:
        raise AssertionError(f"nothing is scheduled here: {entry}")
