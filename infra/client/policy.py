"""How the client waits and how often it talks: backoff, state-sync tries, ping, acks.

All of it is data with the contract's defaults, so a test (or a mobile port) can change any of
it without touching the protocol code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

# API Gateway closes a WebSocket idle for 10 minutes and any WebSocket after 2 hours (§9).
API_GATEWAY_IDLE_SECONDS: Final = 10 * 60
API_GATEWAY_MAX_CONNECTION_SECONDS: Final = 2 * 3600


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: `initial * multiplier**(attempt - 1)`, capped, for `attempts` tries."""

    initial: float = 1.0
    multiplier: float = 2.0
    cap: float = 30.0
    attempts: int = 5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < 0 or self.multiplier < 1 or self.attempts < 0:
            raise ValueError("backoff needs initial >= 0, cap >= 0, multiplier >= 1, attempts >= 0")

    def delay(self, attempt: int) -> float:
        """The wait before try number `attempt` (1 for the first)."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        return float(min(self.initial * self.multiplier ** (attempt - 1), self.cap))

    def delays(self) -> Iterator[float]:
        """Every wait, in order: 1, 2, 4, 8, 16 with the defaults."""
        return (self.delay(attempt) for attempt in range(1, self.attempts + 1))


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    """Everything `TetherClient.watch` decides by time or by count."""

    reconnect: Backoff = field(default_factory=Backoff)
    # State sync over HTTP: 3 tries in all, so 2 waits between them (0.5 s, then 1 s).
    state_sync: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=4.0, attempts=3))
    # `ping` well inside API Gateway's idle limit; a pong missing this long means a dead socket.
    ping_interval: float = 4 * 60.0
    pong_timeout: float = 30.0
    # Reconnect on our own (with `since`) before API Gateway cuts the connection at 2 hours.
    max_connection_age: float = API_GATEWAY_MAX_CONNECTION_SECONDS - 5 * 60.0
    # Acks are coalesced: after this many processed seqs, or this long after the first unacked.
    ack_every: int = 25
    ack_interval: float = 1.0
    # Nothing heard for this long on a running job: ask the HTTP API whether the log moved
    # (a live message can be missed, e.g. while the subscription propagates, and if it was the
    # last one no later message would reveal the gap).
    idle_sync_interval: float = 20.0
    # A subscribe refused this many times in a row ends the watch.
    max_subscribe_failures: int = 3

    def __post_init__(self) -> None:
        if self.state_sync.attempts < 1:
            raise ValueError("state sync needs at least one try")
        if self.ack_every < 1:
            raise ValueError("ack_every must be at least 1")
