"""Packing replayed messages into `batch` frames that fit API Gateway's 32 KB frame.

Sizes are measured on the serialized JSON, exactly as it goes on the wire: a batch frame is
the envelope prefix, the messages joined by commas, and the suffix. A single message larger
than a frame (a big `result`) travels alone, as itself: API Gateway splits a message of up to
128 KB into frames, which is the limit that matters for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from shared.domain.envelope import Envelope, MessageType

FRAME_LIMIT_BYTES: Final = 32 * 1024


def _batch(job_id: str, now: datetime, messages: list[Envelope]) -> Envelope:
    return Envelope(
        type=MessageType.BATCH,
        job_id=job_id,
        ts=now,
        data={"messages": [m.model_dump(mode="json") for m in messages]},
    )


def pack_batches(
    job_id: str, messages: list[Envelope], now: datetime, limit: int = FRAME_LIMIT_BYTES
) -> list[Envelope]:
    """Frames in seq order, each at most `limit` bytes (or one oversized message alone)."""
    overhead = _batch(job_id, now, []).size_bytes
    frames: list[Envelope] = []
    current: list[Envelope] = []
    size = overhead
    for message in messages:
        cost = message.size_bytes + (1 if current else 0)  # the comma between messages
        if current and size + cost > limit:
            frames.append(_batch(job_id, now, current))
            current, size = [], overhead
            cost = message.size_bytes
        if not current and overhead + cost > limit:
            frames.append(message)  # too big to batch: sent on its own
            continue
        current.append(message)
        size += cost
    if current:
        frames.append(_batch(job_id, now, current))
    return frames
