"""The client's bookkeeping for one job, pure: positions, duplicates, gaps, counters, acks.

No sockets and no clocks here (time is passed in), so every rule of docs/protocol.md that a client
must keep is unit-testable: a seq already seen is dropped; a seq ahead of the next one is held
until the replay fills the hole, and if the replay is over and the hole is still there, the
client resubscribes with `since` (a live message can be missed while a new subscription
propagates to the index the dispatcher reads); counters never go backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.client.updates import JobView
from shared.domain.actions import Ack, Subscribe
from shared.domain.envelope import Envelope, MessageType, ProgressData, StatusData, SubscribedData
from shared.domain.models import Counters, JobError, JobState, JobStatus


def merge_counters(shown: Counters, incoming: Counters) -> Counters:
    """What to show next: every count at least what was shown; `total` from the newer read."""
    newer = incoming.processed >= shown.processed
    return Counters(
        total=incoming.total if newer else shown.total,
        processed=max(shown.processed, incoming.processed),
        succeeded=max(shown.succeeded, incoming.succeeded),
        failed=max(shown.failed, incoming.failed),
        skipped=max(shown.skipped, incoming.skipped),
    )


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message now due to the caller, with the view right after it (not after later ones)."""

    message: Envelope
    view: JobView

    @property
    def seq(self) -> int:
        return self.message.seq or 0


class JobTracker:
    """Where the client is in one job's log (`last_seq` in `epoch`) and what it has shown."""

    def __init__(self, job_id: str, *, since: int = 0, epoch: str | None = None) -> None:
        self.job_id = job_id
        self.last_seq = since
        self.epoch = epoch
        self.status: JobStatus | None = None
        self.counters = Counters()
        self.error: JobError | None = None
        self.result: dict[str, object] | None = None
        self.duplicates = 0
        self._held: dict[int, Envelope] = {}
        self._awaiting_reply = False
        self._replay_head = since  # every seq up to here is promised by the current replay
        self._other_epoch = False
        self._log_rewound = False

    # -- subscribing ------------------------------------------------------------------------

    def subscribe(self) -> Subscribe:
        """The subscribe action for now: from the last seq seen, in its epoch."""
        self._awaiting_reply = True
        self._other_epoch = False
        return Subscribe(
            action="subscribe", job_id=self.job_id, since=self.last_seq, epoch=self.epoch
        )

    @property
    def awaiting_reply(self) -> bool:
        return self._awaiting_reply

    def subscribed(self, reply: SubscribedData) -> None:
        # Not recovered: a `resync` follows, and until it is adopted nothing held is a gap.
        self._awaiting_reply = not reply.recovered
        # Not recovered and behind what we saw in this very epoch: the server lost history,
        # so the resync that follows is the truth although it goes back.
        self._log_rewound = (
            not reply.recovered and reply.epoch == self.epoch and reply.seq < self.last_seq
        )
        if reply.recovered:
            self.epoch = reply.epoch
            self._replay_head = max(self._replay_head, reply.seq)

    def refused(self) -> None:
        """The subscribe was answered with an error: nothing is promised."""
        self._awaiting_reply = False

    # -- messages ---------------------------------------------------------------------------

    def accept(self, message: Envelope) -> list[Delivered]:
        """Take one persisted message; return those now deliverable, in seq order, once each."""
        seq = message.seq
        if seq is None or message.type not in (MessageType.STATUS, MessageType.PROGRESS):
            return []
        if self.epoch is not None and message.epoch not in (None, self.epoch):
            self._other_epoch = True  # another generation: only a resubscribe can sort it out
            return []
        if seq <= self.last_seq or seq in self._held:
            self.duplicates += 1
            return []
        self._held[seq] = message
        return self._flush()

    @property
    def needs_resubscribe(self) -> bool:
        """A hole the current replay will not fill: ask again from `last_seq`."""
        if self._awaiting_reply:
            return False
        return self._other_epoch or (bool(self._held) and self.last_seq >= self._replay_head)

    @property
    def held(self) -> list[int]:
        return sorted(self._held)

    def adopt(self, state: JobState) -> list[Delivered]:
        """Take a state sync (resync); a read older than what was shown changes nothing,
        unless the server said its log went back (`subscribed`)."""
        if state.epoch == self.epoch and state.seq < self.last_seq:
            if not self._log_rewound:
                return []
            self._held.clear()  # what we held was from the history the server lost
        self._log_rewound = False
        for seq, message in list(self._held.items()):
            if message.epoch not in (None, state.epoch):
                del self._held[seq]
        self.epoch = state.epoch
        self.last_seq = state.seq
        self._replay_head = state.seq
        self._awaiting_reply = False
        self._other_epoch = False
        self.status = state.status
        self.counters = merge_counters(self.counters, state.counters)
        self.error, self.result = state.error, state.result
        for seq in [seq for seq in self._held if seq <= state.seq]:
            del self._held[seq]
        return self._flush()

    def _flush(self) -> list[Delivered]:
        ready: list[Delivered] = []
        while (message := self._held.pop(self.last_seq + 1, None)) is not None:
            self._apply(message)
            self.last_seq += 1
            ready.append(Delivered(message, self.view()))
        return ready

    def _apply(self, message: Envelope) -> None:
        if message.type is MessageType.PROGRESS:
            progress = ProgressData.model_validate(message.data)
            incoming = Counters.model_validate(progress.model_dump(exclude={"percent"}))
            self.counters = merge_counters(self.counters, incoming)
        else:
            status = StatusData.model_validate(message.data)
            self.status = status.status
            self.error, self.result = status.error, status.result

    @property
    def finished(self) -> bool:
        return self.status is not None and self.status.is_terminal

    def view(self) -> JobView:
        return JobView(
            job_id=self.job_id,
            status=self.status,
            counters=self.counters,
            seq=self.last_seq,
            epoch=self.epoch,
            error=self.error,
            result=self.result,
        )


@dataclass
class AckWindow:
    """Coalesced acks: the highest processed seq is acked after `every` seqs or `interval` s."""

    every: int
    interval: float
    acked: int = 0
    processed: int = 0
    _since: float | None = None  # when the oldest unacked seq was processed

    def processed_up_to(self, seq: int, now: float) -> None:
        if seq <= self.processed:
            return
        self.processed = seq
        if self._since is None and seq > self.acked:
            self._since = now

    def due_at(self) -> float | None:
        return None if self._since is None else self._since + self.interval

    def take(self, now: float, *, force: bool = False) -> int | None:
        """The seq to ack now, if any, and consider it sent."""
        if self.processed <= self.acked:
            return None
        by_count = self.processed - self.acked >= self.every
        by_time = self._since is not None and now >= self._since + self.interval
        if not (force or by_count or by_time):
            return None
        self.acked, self._since = self.processed, None
        return self.acked

    def action(self, job_id: str, seq: int) -> Ack:
        return Ack(action="ack", job_id=job_id, seq=seq)
