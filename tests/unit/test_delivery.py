"""`deliver` with in-memory fakes: fan-out, 410 clean-up, failures kept per connection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from shared.domain.envelope import Envelope, MessageType
from shared.services.delivery import deliver
from shared.services.ports import PostOutcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGE = Envelope(type=MessageType.STATUS, job_id="j1", seq=3, epoch="e1", ts=NOW)


@dataclass(frozen=True)
class Sub:
    connection_id: str


class Directory:
    def __init__(self, *ids: str, broken_disconnect: bool = False) -> None:
        self.ids = list(ids)
        self.removed: list[str] = []
        self.broken_disconnect = broken_disconnect

    def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> list[Sub]:
        assert (tenant_id, job_id, now) == ("acme", "j1", NOW)
        return [Sub(i) for i in self.ids]

    def disconnect(self, connection_id: str) -> int:
        if self.broken_disconnect:
            raise RuntimeError("table unavailable")
        self.removed.append(connection_id)
        return 2


class Poster:
    def __init__(self, *, gone: frozenset[str] = frozenset(), slow: float = 0.0) -> None:
        self.gone = gone
        self.slow = slow
        self.frames: dict[str, bytes] = {}
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if connection_id.startswith("boom"):
                raise TimeoutError("read timed out")
            if connection_id.startswith("slow"):
                time.sleep(self.slow)
            if connection_id in self.gone:
                return PostOutcome.GONE
            with self._lock:
                self.frames[connection_id] = data
            return PostOutcome.DELIVERED
        finally:
            with self._lock:
                self.active -= 1


def test_everyone_gets_the_envelope_json_and_gone_ones_are_removed() -> None:
    directory = Directory("a", "b", "gone", "boom", "a")
    poster = Poster(gone=frozenset({"gone"}))

    report = deliver(MESSAGE, "acme", connections=directory, poster=poster, now=NOW)

    assert sorted(poster.frames) == ["a", "b"]  # "a" listed twice, posted once
    assert poster.frames["a"] == MESSAGE.to_json().encode()
    assert directory.removed == ["gone"]
    assert (report.delivered, report.gone, report.failed_connections) == (2, 1, ("boom",))
    assert "TimeoutError" in report.errors["boom"]
    assert not report.complete


def test_parallelism_is_bounded_and_a_slow_client_does_not_hold_the_others() -> None:
    ids = ["slow-1", *(f"c{i}" for i in range(20))]
    poster = Poster(slow=0.3)

    started = time.monotonic()
    report = deliver(
        MESSAGE, "acme", connections=Directory(*ids), poster=poster, now=NOW, max_parallel=4
    )

    assert report.delivered == 21
    assert report.complete
    assert poster.peak <= 4
    assert time.monotonic() - started < 0.6  # the 20 fast ones did not queue behind it


def test_a_gone_connection_that_cannot_be_removed_is_reported_not_raised() -> None:
    report = deliver(
        MESSAGE,
        "acme",
        connections=Directory("gone", "a", broken_disconnect=True),
        poster=Poster(gone=frozenset({"gone"})),
        now=NOW,
    )

    assert (report.delivered, report.gone, report.not_removed) == (1, 1, ("gone",))
    assert report.complete


def test_no_subscribers_means_no_posts() -> None:
    poster = Poster()
    report = deliver(MESSAGE, "acme", connections=Directory(), poster=poster, now=NOW)
    assert (report.delivered, report.gone, poster.frames) == (0, 0, {})


def test_a_failing_subscriber_query_raises() -> None:
    class Broken(Directory):
        def subscribers(self, tenant_id: str, job_id: str, now: datetime) -> list[Sub]:
            raise ConnectionError(f"query for {tenant_id}/{job_id} at {now} failed")

    with pytest.raises(ConnectionError):
        deliver(MESSAGE, "acme", connections=Broken(), poster=Poster(), now=NOW)
