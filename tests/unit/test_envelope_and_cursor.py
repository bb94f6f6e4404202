"""The wire envelope's shape and the pagination cursor's tamper evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.adapters.cursor import CursorCodec
from shared.domain.envelope import Envelope, MessageType, ProgressData
from shared.domain.errors import InvalidCursor
from shared.domain.models import Counters


def test_envelope_serialises_to_the_documented_shape() -> None:
    envelope = Envelope(
        type=MessageType.PROGRESS,
        job_id="j1",
        seq=7,
        epoch="e1",
        ts=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        data=ProgressData.of(Counters(total=4, processed=1, succeeded=1)).model_dump(),
    )

    wire = json.loads(envelope.to_json())

    assert wire == {
        "v": 2,
        "type": "progress",
        "jobId": "j1",
        "seq": 7,
        "epoch": "e1",
        "ts": "2026-01-02T03:04:05.600Z",
        "data": {
            "total": 4,
            "processed": 1,
            "succeeded": 1,
            "failed": 0,
            "skipped": 0,
            "percent": 25.0,
        },
    }
    assert Envelope.model_validate_json(envelope.to_json()) == envelope
    assert envelope.size_bytes == len(envelope.to_json().encode())


def test_only_status_and_progress_are_persisted() -> None:
    assert {t for t in MessageType if t.persisted} == {MessageType.STATUS, MessageType.PROGRESS}


def test_cursor_round_trip_and_tamper_evidence() -> None:
    codec = CursorCodec(b"0123456789abcdef")
    position = {"tenantId": {"S": "acme"}, "jobId": {"S": "j9"}}
    cursor = codec.encode("scope-a", position)

    assert codec.decode("scope-a", cursor) == position
    with pytest.raises(InvalidCursor):
        codec.decode("scope-b", cursor)
    with pytest.raises(InvalidCursor):
        CursorCodec(b"another-secret-123").decode("scope-a", cursor)
    body, signature = cursor.split(".")
    with pytest.raises(InvalidCursor):
        codec.decode("scope-a", f"{body[:-2]}AA.{signature}")
    for garbage in ("", ".", "abc", "%%%.%%%", "a.b.c"):
        with pytest.raises(InvalidCursor):
            codec.decode("scope-a", garbage)


def test_cursor_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        CursorCodec(b"short")
