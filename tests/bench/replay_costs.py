"""What a reconnect costs: a client that missed 1,000 progress messages comes back.

Run with `make bench`. Counts, on moto with the real store and session: PostToConnection calls
(one per frame the session returns; the handler posts each) and DynamoDB requests by
operation, against the naive alternative of one post per missed message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta

from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.domain.auth import Principal, Scope
from shared.domain.frames import FRAME_LIMIT_BYTES
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession
from tests.bench.store_costs import RequestCounter
from tests.bench.world import bench_world

MISSED = 1000


@dataclass(frozen=True)
class ReplayCost:
    missed: int
    frames: int
    replay_bytes: int
    reads: dict[str, int]
    writes: dict[str, int]

    @property
    def frame_goal(self) -> int:
        return math.ceil(self.replay_bytes / FRAME_LIMIT_BYTES) + 1  # + the `subscribed` reply


def measure_replay(missed: int = MISSED) -> ReplayCost:
    with bench_world("replay", progress_min_interval=timedelta()) as world:
        client, clock, jobs = world.client, world.clock, world.jobs
        session = WebSocketSession(
            jobs=jobs,
            connections=DynamoConnectionStore(client, world.tables["connections"]),
            clock=clock,
            runner=JobRunner(jobs, clock=clock, executions=None, batch_size=100),
        )
        job = jobs.create_job(JobRequest(type="demo"), tenant_id="t", owner_id="u")
        ref = JobRef("t", job.job_id)
        record = jobs.start(ref, total=missed)
        seen = record.seq  # the client saw everything up to `running`, then went away
        for _ in range(missed):
            clock.advance(seconds=1)
            record = jobs.report_progress(ref, ProgressDelta(succeeded=1), current=record)
        session.connect("c1", Principal(tenant_id="t", subject="u", scopes=frozenset(Scope)))

        counter = RequestCounter(client)
        with counter.measure() as calls:
            frames = session.receive(
                "c1", json.dumps({"action": "subscribe", "jobId": job.job_id, "since": seen})
            )
        replayed = frames[1:]
        reads = {k: v for k, v in calls.items() if k in {"GetItem", "Query"}}
        writes = {k: v for k, v in calls.items() if k not in reads}
        return ReplayCost(
            missed=missed,
            frames=len(frames),
            replay_bytes=sum(frame.size_bytes for frame in replayed),
            reads=reads,
            writes=writes,
        )


def main() -> None:
    cost = measure_replay()
    print(f"client missed {cost.missed} progress messages, then subscribed with since")
    print(f"  PostToConnection calls: {cost.frames} (goal bytes/32 KB + 1 = {cost.frame_goal};")
    print(f"    one post per message would be {cost.missed + 1})")
    print(f"  replayed bytes: {cost.replay_bytes}")
    print(f"  DynamoDB reads: {cost.reads}; writes: {cost.writes}")


if __name__ == "__main__":
    main()
