"""The WebSocket Lambda handler: API Gateway events in, frames out through @connections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from functions import ws_handler
from infra.local.events import LocalLambdaContext, websocket_event
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.domain.auth import Principal, Scope
from shared.domain.models import JobRequest
from shared.services.jobs import JobService
from shared.services.ports import PostOutcome
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from shared.domain.clock import ManualClock

ALICE = Principal(tenant_id="acme", subject="alice", scopes=frozenset(Scope))


@dataclass
class RecordingPoster:
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        if connection_id in self.gone:
            return PostOutcome.GONE
        self.frames.setdefault(connection_id, []).append(json.loads(data))
        return PostOutcome.DELIVERED


@pytest.fixture
def poster(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> RecordingPoster:
    recording = RecordingPoster()
    session = WebSocketSession(
        jobs=service,
        connections=DynamoConnectionStore(dynamodb, table_names["connections"]),
        clock=clock,
        runner=JobRunner(service, clock=clock, executions=None, batch_size=100),
    )
    built = ws_handler.WebSocketContext(session=session, poster=recording)
    monkeypatch.setattr(ws_handler, "context", lambda: built)
    return recording


def _call(event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = ws_handler.handler(event, LocalLambdaContext())
    return answer


def test_connect_subscribe_ping_disconnect(poster: RecordingPoster, service: JobService) -> None:
    job = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")

    connected = _call(
        websocket_event(
            "CONNECT",
            "c1",
            headers={"Sec-WebSocket-Protocol": "tether.v2, bearer.xyz"},
            authorizer=ALICE.to_context(),
        )
    )
    assert connected == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "tether.v2"}}

    subscribe = json.dumps({"action": "subscribe", "jobId": job.job_id, "since": 0})
    assert _call(websocket_event("MESSAGE", "c1", body=subscribe))["statusCode"] == 200
    assert _call(websocket_event("MESSAGE", "c1", body='{"action":"ping"}'))["statusCode"] == 200
    assert _call(websocket_event("MESSAGE", "c1", body="{oops"))["statusCode"] == 200

    types = [frame["type"] for frame in poster.frames["c1"]]
    assert types == ["subscribed", "batch", "pong", "error"]
    assert poster.frames["c1"][1]["data"]["messages"][0]["seq"] == 1
    assert poster.frames["c1"][3]["data"]["code"] == "bad_request"

    assert _call(websocket_event("DISCONNECT", "c1"))["statusCode"] == 200
    _call(websocket_event("MESSAGE", "c1", body='{"action":"ping"}'))
    assert poster.frames["c1"][-1]["data"]["code"] == "not_connected"


def test_connect_without_a_verified_principal_is_refused(poster: RecordingPoster) -> None:
    assert _call(websocket_event("CONNECT", "c9"))["statusCode"] == 401


def test_a_client_gone_mid_reply_is_forgotten(
    poster: RecordingPoster,
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
) -> None:
    _call(websocket_event("CONNECT", "c2", authorizer=ALICE.to_context()))
    poster.gone.add("c2")
    _call(websocket_event("MESSAGE", "c2", body='{"action":"ping"}'))
    store = DynamoConnectionStore(dynamodb, table_names["connections"])
    assert store.get("c2", clock.now()) is None


def _metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """Powertools' EMF lines on stdout, as metric name → value (summed)."""
    found: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name = metric["Name"]
                values = record[name] if isinstance(record[name], list) else [record[name]]
                found[name] = found.get(name, 0) + sum(values)
    return found


def test_a_subscribe_counts_the_messages_it_replays(
    poster: RecordingPoster, service: JobService, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job with one logged message (its creation) and a connected client
    job = service.create_job(JobRequest(type="demo"), tenant_id="acme", owner_id="alice")
    _call(websocket_event("CONNECT", "c3", authorizer=ALICE.to_context()))
    capsys.readouterr()

    # When the client subscribes from the start
    subscribe = json.dumps({"action": "subscribe", "jobId": job.job_id, "since": 0})
    _call(websocket_event("MESSAGE", "c3", body=subscribe))

    # Then the replayed messages and the frames sent are published as metrics
    published = _metrics(capsys)
    replayed = len(poster.frames["c3"][1]["data"]["messages"])
    assert replayed >= 1
    assert published["MessagesReplayed"] == replayed
    assert published["FramesSent"] == len(poster.frames["c3"])
    # and the job is the correlation id of the invocation's logs; a ping carries none
    assert ws_handler.logger.get_correlation_id() == job.job_id
    _call(websocket_event("MESSAGE", "c3", body='{"action":"ping"}'))
    assert ws_handler.logger.get_correlation_id() is None


def test_a_gone_client_is_counted(
    poster: RecordingPoster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a connected client whose socket is gone (410 from @connections)
    _call(websocket_event("CONNECT", "c4", authorizer=ALICE.to_context()))
    poster.gone.add("c4")
    capsys.readouterr()

    # When the handler answers it
    _call(websocket_event("MESSAGE", "c4", body='{"action":"ping"}'))

    # Then the dropped connection is counted and nothing was sent
    published = _metrics(capsys)
    assert published["ConnectionsGone"] == 1
    assert published["FramesSent"] == 0
