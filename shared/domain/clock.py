"""Injected time and ids, so expiry, TTL and ordering are testable without sleeping."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand; thread-safe because stores are hammered from threads."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


class IdFactory(Protocol):
    def job_id(self, now: datetime) -> str:
        """A new job id; ids sort by creation time."""
        ...

    def epoch(self) -> str:
        """A new log generation."""
        ...


class RandomIds:
    """Time-ordered job ids: 12 hex digits of epoch milliseconds, then 12 random hex digits."""

    def job_id(self, now: datetime) -> str:
        millis = int(now.timestamp() * 1000)
        return f"j_{millis:012x}{secrets.token_hex(6)}"

    def epoch(self) -> str:
        return secrets.token_hex(4)


class SequentialIds:
    """Deterministic ids for tests: still time-ordered, then a counter."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def job_id(self, now: datetime) -> str:
        with self._lock:
            self._count += 1
            millis = int(now.timestamp() * 1000)
            return f"j_{millis:012x}{self._count:012x}"

    def epoch(self) -> str:
        return "e1"
