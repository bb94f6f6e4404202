"""WebSocket recovery against moto: replay, stored cursors, resync, frames, acks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.domain.auth import Principal, Scope
from shared.domain.envelope import Envelope, MessageType
from shared.domain.frames import FRAME_LIMIT_BYTES
from shared.domain.models import JobRecord, JobRequest, ProgressDelta
from shared.services.jobs import JobRef, JobService
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from shared.domain.clock import ManualClock

ALICE = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))


@pytest.fixture
def connections(dynamodb: DynamoDBClient, table_names: dict[str, str]) -> DynamoConnectionStore:
    return DynamoConnectionStore(dynamodb, table_names["connections"])


@pytest.fixture
def session(
    service: JobService, connections: DynamoConnectionStore, clock: ManualClock
) -> WebSocketSession:
    # No state machine: the runner cancels the job alone (no execution to let go)
    runner = JobRunner(service, clock=clock, executions=None, batch_size=100)
    return WebSocketSession(jobs=service, connections=connections, clock=clock, runner=runner)


def _running_job(service: JobService, clock: ManualClock, progress: int = 0) -> JobRecord:
    job = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
    ref = JobRef("acme", job.job_id)
    job = service.start(ref, total=progress or 1)
    for _ in range(progress):
        clock.advance(seconds=1)
        job = service.report_progress(ref, ProgressDelta(succeeded=1), current=job)
    return job


def _send(session: WebSocketSession, connection: str, **frame: Any) -> list[Envelope]:
    return session.receive(connection, json.dumps(frame))


def _seqs(frames: list[Envelope]) -> list[int]:
    seqs: list[int] = []
    for frame in frames:
        if frame.type is MessageType.BATCH:
            seqs.extend(m["seq"] for m in frame.data["messages"])
        elif frame.seq is not None:
            seqs.append(frame.seq)
    return seqs


def test_subscribe_with_since_replays_exactly_the_gap(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    # Given a job with 12 messages and a client that saw up to seq 5
    job = _running_job(service, clock, progress=10)
    session.connect("c1", ALICE)

    # When it subscribes with since=5
    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=5)

    # Then it is told it recovered, and gets 6..12 once, in order
    subscribed = frames[0]
    assert subscribed.type is MessageType.SUBSCRIBED
    assert subscribed.data == {
        "jobId": job.job_id,
        "seq": 12,
        "epoch": job.epoch,
        "recovered": True,
        "replayed": 7,
    }
    assert _seqs(frames[1:]) == list(range(6, 13))
    assert all(frame.type is MessageType.BATCH for frame in frames[1:])


def test_subscribe_without_since_uses_the_stored_cursor(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock, progress=4)  # seqs 1..6
    session.connect("c1", ALICE)
    _send(session, "c1", action="subscribe", jobId=job.job_id, since=0)
    assert _send(session, "c1", action="ack", jobId=job.job_id, seq=4) == []
    assert _send(session, "c1", action="ack", jobId=job.job_id, seq=2) == []  # backwards: ignored

    # When the app reconnects on a new connection without `since`
    session.connect("c2", ALICE)
    frames = _send(session, "c2", action="subscribe", jobId=job.job_id)

    # Then it replays after its acknowledged seq 4
    assert frames[0].data["replayed"] == 2
    assert _seqs(frames[1:]) == [5, 6]


def test_no_since_and_no_cursor_replays_the_whole_log(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock, progress=2)
    session.connect("c1", ALICE)
    frames = _send(session, "c1", action="subscribe", jobId=job.job_id)
    assert _seqs(frames[1:]) == [1, 2, 3, 4]


def test_expired_log_means_resync_with_the_state(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock, progress=2)
    clock.advance(hours=25)
    service.report_progress(JobRef("acme", job.job_id), ProgressDelta(succeeded=1))
    session.connect("c1", ALICE)

    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=1)

    assert [f.type for f in frames] == [MessageType.SUBSCRIBED, MessageType.RESYNC]
    assert frames[0].data["recovered"] is False
    assert frames[0].data["replayed"] == 0
    assert frames[1].data["seq"] == 5
    assert frames[1].data["counters"]["processed"] == 3


def test_another_epoch_means_resync(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock)
    session.connect("c1", ALICE)
    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=1, epoch="old")
    assert [f.type for f in frames] == [MessageType.SUBSCRIBED, MessageType.RESYNC]


def test_a_long_gap_is_packed_into_frames_under_the_limit(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock, progress=400)
    session.connect("c1", ALICE)

    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=0)

    batches = frames[1:]
    assert _seqs(batches) == list(range(1, 403))
    assert all(len(f.to_json().encode()) <= FRAME_LIMIT_BYTES for f in batches)
    total = sum(len(f.to_json().encode()) for f in batches)
    assert len(batches) <= total // FRAME_LIMIT_BYTES + 1


def test_bad_frames_get_error_frames_and_change_nothing(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock)
    session.connect("c1", ALICE)
    cases = {
        "not json": "bad_request",
        json.dumps({"action": "dance"}): "bad_request",
        json.dumps({"action": "subscribe"}): "bad_request",
        json.dumps({"action": "ack", "jobId": job.job_id, "seq": 0}): "bad_request",
        json.dumps({"action": "subscribe", "jobId": "j_nope"}): "job_not_found",
    }
    for body, code in cases.items():
        (frame,) = session.receive("c1", body)
        assert frame.type is MessageType.ERROR
        assert frame.data["code"] == code, body
    (frame,) = session.receive("unknown-connection", json.dumps({"action": "ping"}))
    assert frame.data["code"] == "not_connected"
    assert [f.type for f in session.receive("c1", '{"action": "ping"}')] == [MessageType.PONG]


def test_resume_token_connections_reach_one_job_only(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    job = _running_job(service, clock)
    other = _running_job(service, clock)
    session.connect(
        "c1", Principal.for_resume(tenant_id="acme", subject="alice", job_id=job.job_id)
    )
    assert _send(session, "c1", action="subscribe", jobId=job.job_id)[0].type is (
        MessageType.SUBSCRIBED
    )
    (refused,) = _send(session, "c1", action="subscribe", jobId=other.job_id)
    assert refused.data["code"] == "job_not_found"
    (forbidden,) = _send(session, "c1", action="cancel", jobId=job.job_id)
    assert forbidden.data["code"] == "forbidden"


def test_cancel_over_the_socket_and_unsubscribe(
    session: WebSocketSession,
    service: JobService,
    clock: ManualClock,
    connections: DynamoConnectionStore,
) -> None:
    job = _running_job(service, clock)
    session.connect("c1", ALICE)
    _send(session, "c1", action="subscribe", jobId=job.job_id)
    assert [s.connection_id for s in connections.subscribers("acme", job.job_id, clock.now())] == [
        "c1"
    ]

    assert _send(session, "c1", action="cancel", jobId=job.job_id) == []
    assert service.get(JobRef("acme", job.job_id)).cancel_requested
    _send(session, "c1", action="unsubscribe", jobId=job.job_id)
    assert connections.subscribers("acme", job.job_id, clock.now()) == []

    session.disconnect("c1")
    assert connections.get("c1", clock.now()) is None
    clock.advance(hours=3)
    session.connect("c2", ALICE)
    assert connections.get("c2", clock.now() + timedelta(hours=3)) is None  # expired connection


def test_positions_ahead_of_the_log_and_oversized_frames_are_refused_not_fatal(
    session: WebSocketSession, service: JobService, clock: ManualClock
) -> None:
    # Given a job whose log ends at seq 3
    job = _running_job(service, clock, progress=1)
    session.connect("c1", ALICE)
    intruder_job = service.create_job(JobRequest(type="demo"), tenant_id="globex", owner_id="m")

    # When the client sends positions the log has not reached, a huge frame, another
    # tenant's job id
    refusals = {
        "since": _send(session, "c1", action="subscribe", jobId=job.job_id, since=9),
        "ack": _send(session, "c1", action="ack", jobId=job.job_id, seq=4),
        "huge": session.receive("c1", json.dumps({"action": "ping", "pad": "x" * 5000})),
        "tenant": _send(session, "c1", action="subscribe", jobId=intruder_job.job_id),
    }

    # Then each gets one error frame with a clear code, and the connection still works
    codes = {name: [f.data["code"] for f in frames] for name, frames in refusals.items()}
    assert codes == {
        "since": ["seq_ahead"],
        "ack": ["seq_ahead"],
        "huge": ["frame_too_large"],
        "tenant": ["job_not_found"],
    }
    assert [f.type for f in _send(session, "c1", action="ping")] == [MessageType.PONG]
    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=3)
    assert frames[0].data["recovered"] is True
    # a `since` from another generation is not "ahead": it is a resync
    frames = _send(session, "c1", action="subscribe", jobId=job.job_id, since=9, epoch="old")
    assert [f.type for f in frames] == [MessageType.SUBSCRIBED, MessageType.RESYNC]
