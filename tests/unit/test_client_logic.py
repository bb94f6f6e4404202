"""The client's pure rules: backoff, duplicates, gaps, counters, coalesced acks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.client.policy import Backoff
from infra.client.tracker import AckWindow, Delivered, JobTracker, merge_counters
from shared.domain.envelope import Envelope, MessageType, ProgressData, SubscribedData
from shared.domain.models import Counters, JobState, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def progress(seq: int, processed: int, total: int = 10, epoch: str = "e1") -> Envelope:
    counters = Counters(total=total, processed=processed, succeeded=processed)
    return Envelope(
        type=MessageType.PROGRESS,
        job_id="j1",
        seq=seq,
        epoch=epoch,
        ts=T0,
        data=ProgressData.of(counters).model_dump(mode="json"),
    )


def status(seq: int, value: JobStatus) -> Envelope:
    return Envelope(
        type=MessageType.STATUS, job_id="j1", seq=seq, epoch="e1", ts=T0, data={"status": value}
    )


def subscribed_tracker(head: int, *, since: int = 0) -> JobTracker:
    tracker = JobTracker("j1", since=since)
    tracker.subscribe()
    tracker.subscribed(
        SubscribedData(job_id="j1", seq=head, epoch="e1", recovered=True, replayed=head - since)
    )
    return tracker


def seqs(delivered: list[Delivered]) -> list[int]:
    return [item.seq for item in delivered]


def test_default_backoff_is_1_2_4_8_16_seconds() -> None:
    assert list(Backoff().delays()) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped_and_configurable() -> None:
    policy = Backoff(initial=1.0, multiplier=2.0, cap=30.0, attempts=8)

    assert list(policy.delays()) == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert list(Backoff(initial=0.5, multiplier=3.0, cap=5.0, attempts=4).delays()) == [
        0.5,
        1.5,
        4.5,
        5.0,
    ]
    with pytest.raises(ValueError, match="count from 1"):
        policy.delay(0)
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(multiplier=0.5)


def test_subscribe_asks_from_the_last_seq_in_its_epoch() -> None:
    tracker = subscribed_tracker(head=2)
    tracker.accept(progress(1, 1))
    tracker.accept(progress(2, 2))

    action = tracker.subscribe()

    assert (action.since, action.epoch, action.job_id) == (2, "e1", "j1")
    assert tracker.awaiting_reply


def test_duplicates_are_dropped_and_counted() -> None:
    tracker = subscribed_tracker(head=3)

    delivered: list[Delivered] = [
        *tracker.accept(progress(1, 1)),
        *tracker.accept(progress(2, 2)),
        *tracker.accept(progress(1, 1)),
        *tracker.accept(progress(2, 2)),
        *tracker.accept(progress(3, 3)),
    ]

    assert seqs(delivered) == [1, 2, 3]
    assert tracker.duplicates == 2
    assert tracker.last_seq == 3


def test_an_early_seq_waits_for_the_replay_to_fill_the_hole() -> None:
    # Given a replay promising seqs up to 3, and a live message 4 arriving before the replay
    tracker = subscribed_tracker(head=3)

    # When 4 comes first, then the replay's 1..3
    early = tracker.accept(progress(4, 4))
    resubscribe_while_replaying = tracker.needs_resubscribe
    replayed = [*tracker.accept(progress(1, 1)), *tracker.accept(progress(2, 2))]
    rest = tracker.accept(progress(3, 3))

    # Then nothing is shown out of order and no resubscribe is needed
    assert early == []
    assert not resubscribe_while_replaying
    assert seqs(replayed) == [1, 2]
    assert seqs(rest) == [3, 4]
    assert not tracker.needs_resubscribe


def test_a_hole_after_the_replay_means_resubscribe_from_the_last_seq() -> None:
    # Given the replay (1..2) is complete
    tracker = subscribed_tracker(head=2)
    tracker.accept(progress(1, 1))
    tracker.accept(progress(2, 2))

    # When live message 4 arrives (3 was missed)
    shown = tracker.accept(progress(4, 4))

    # Then 4 is held and the client must resubscribe with since=2
    assert shown == []
    assert tracker.needs_resubscribe
    assert tracker.held == [4]
    assert tracker.subscribe().since == 2
    assert not tracker.needs_resubscribe  # until the reply comes
    tracker.subscribed(SubscribedData(job_id="j1", seq=4, epoch="e1", recovered=True, replayed=2))
    assert seqs(tracker.accept(progress(3, 3))) == [3, 4]


def test_a_message_of_another_epoch_asks_for_a_resubscribe() -> None:
    tracker = subscribed_tracker(head=1)
    tracker.accept(progress(1, 1))

    shown = tracker.accept(progress(2, 2, epoch="e2"))

    assert shown == []
    assert tracker.needs_resubscribe


def test_counters_never_go_backwards() -> None:
    shown = Counters(total=10, processed=6, succeeded=5, failed=1)

    older = merge_counters(shown, Counters(total=10, processed=4, succeeded=4))
    newer = merge_counters(shown, Counters(total=12, processed=7, succeeded=6, failed=1))

    assert older == shown
    assert newer == Counters(total=12, processed=7, succeeded=6, failed=1)


def _state(seq: int, processed: int, status: JobStatus = JobStatus.RUNNING) -> JobState:
    return JobState(
        job_id="j1",
        tenant_id="t",
        owner_id="u",
        type="demo",
        status=status,
        counters=Counters(total=10, processed=processed, succeeded=processed),
        seq=seq,
        epoch="e1",
        created_at=T0,
        updated_at=T0,
    )


def test_a_state_sync_older_than_what_was_shown_changes_nothing() -> None:
    tracker = subscribed_tracker(head=3)
    for message in (status(1, JobStatus.RUNNING), progress(2, 4), progress(3, 6)):
        tracker.accept(message)

    tracker.adopt(_state(seq=2, processed=4))

    assert (tracker.last_seq, tracker.counters.processed) == (3, 6)


def test_a_state_sync_moves_the_position_and_releases_held_messages() -> None:
    # Given the client was told to resync while live 11 and 12 had already arrived
    tracker = JobTracker("j1")
    tracker.subscribe()
    tracker.subscribed(SubscribedData(job_id="j1", seq=10, epoch="e1", recovered=False, replayed=0))
    tracker.accept(progress(11, 8))
    tracker.accept(status(12, JobStatus.COMPLETED))

    waiting_for_the_resync = tracker.needs_resubscribe

    # When the state (seq 10) is adopted
    released = tracker.adopt(_state(seq=10, processed=7))

    # Then 11 and 12 follow it in order, and the job is finished
    assert not waiting_for_the_resync
    assert seqs(released) == [11, 12]
    assert tracker.finished
    assert tracker.counters.processed == 8


def test_a_server_that_lost_history_is_followed_back_to_its_head() -> None:
    # Given a client that saw up to seq 6, and a server whose log now ends at 4 in the same
    # epoch: it answers the subscribe with recovered false, seq 4 and a resync
    tracker = subscribed_tracker(head=6)
    for seq in range(1, 7):
        tracker.accept(progress(seq, seq))
    tracker.subscribe()
    tracker.subscribed(SubscribedData(job_id="j1", seq=4, epoch="e1", recovered=False, replayed=0))

    # When the client adopts that state, and the log goes on from there
    tracker.adopt(_state(seq=4, processed=4))
    delivered = tracker.accept(progress(5, 5))

    # Then it follows the server's log from its head (the seqs it saw past it are gone),
    # and its counters never go back
    assert seqs(delivered) == [5]
    assert (tracker.last_seq, tracker.counters.processed) == (5, 6)
    assert not tracker.awaiting_reply


def test_acks_are_coalesced_by_count_and_by_time() -> None:
    window = AckWindow(every=3, interval=1.0)

    window.processed_up_to(1, now=0.0)
    window.processed_up_to(2, now=0.1)
    first = window.take(now=0.2)
    window.processed_up_to(3, now=0.3)
    by_count = window.take(now=0.3)
    window.processed_up_to(4, now=5.0)
    too_soon = window.take(now=5.5)
    by_time = window.take(now=6.0)
    nothing_new = window.take(now=9.0, force=True)

    assert (first, by_count, too_soon, by_time, nothing_new) == (None, 3, None, 4, None)
    assert window.action("j1", 4).model_dump(by_alias=True) == {
        "action": "ack",
        "jobId": "j1",
        "seq": 4,
    }


def test_each_delivered_message_carries_the_view_right_after_it() -> None:
    tracker = subscribed_tracker(head=3)
    tracker.accept(progress(3, 9))
    tracker.accept(progress(2, 5))

    delivered = tracker.accept(status(1, JobStatus.RUNNING))

    assert [(d.seq, d.view.seq, d.view.counters.processed) for d in delivered] == [
        (1, 1, 0),
        (2, 2, 5),
        (3, 3, 9),
    ]
    assert delivered[0].view.status is JobStatus.RUNNING
