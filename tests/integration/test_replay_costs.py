"""A reconnect after 1,000 missed messages costs frames by bytes and reads by pages."""

from __future__ import annotations

from tests.bench.replay_costs import measure_replay


def test_replay_posts_by_the_frame_and_reads_by_the_page() -> None:
    cost = measure_replay(1000)

    assert cost.frames <= cost.frame_goal
    assert cost.frames < cost.missed / 50  # against one post per message
    # the connection, the job (twice: access check and the replay's head) and the log's pages
    assert cost.reads == {"GetItem": 3, "Query": 1}
    assert cost.writes == {"PutItem": 1}  # the subscription, registered first
