"""What the job store costs on AWS, in DynamoDB requests per operation, measured on moto.

Run with `make bench`. Requests are counted with a botocore `before-send` hook, so the figures
are what the code really sends, not what it is meant to send. DynamoDB bills a transactional
write at twice the capacity of a plain one; the table shows both the request count and which
operations were used. The integration test `test_request_costs` asserts the same figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.models import JobRequest, ProgressDelta
from shared.services.jobs import JobRef
from tests.bench.world import bench_world

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class RequestCounter:
    """Counts the DynamoDB API requests a client actually sends, by operation."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, **kwargs: Any) -> None:
        target = kwargs["request"].headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        self.calls[name.rsplit(".", 1)[-1]] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        before = Counter(self.calls)
        delta: Counter[str] = Counter()
        yield delta
        delta.update(self.calls - before)


@dataclass(frozen=True)
class Cost:
    operation: str
    calls: Counter[str]

    @property
    def requests(self) -> int:
        return sum(self.calls.values())


def measure_costs() -> list[Cost]:
    """Each operation of a job's life, once, with the requests it sent."""
    with bench_world("bench", progress_min_interval=timedelta(seconds=1)) as world:
        client, clock, service = world.client, world.clock, world.jobs
        counter = RequestCounter(client)
        costs: list[Cost] = []

        def cost(operation: str, action: Callable[[], Any]) -> Any:
            with counter.measure() as calls:
                value = action()
            costs.append(Cost(operation, calls))
            return value

        job = cost(
            "create job (+ status message)",
            lambda: service.create_job(JobRequest(type="demo"), tenant_id="t", owner_id="u"),
        )
        ref = JobRef("t", job.job_id)
        job = cost("start: transition, job held", lambda: service.start(ref, total=10, current=job))
        clock.advance(seconds=2)
        job = cost(
            "progress, announced, job held",
            lambda: service.report_progress(ref, ProgressDelta(succeeded=1), current=job),
        )
        job = cost(
            "progress, coalesced, job held",
            lambda: service.report_progress(ref, ProgressDelta(succeeded=1), current=job),
        )
        clock.advance(seconds=2)
        cost(
            "progress, announced, job read first",
            lambda: service.report_progress(ref, ProgressDelta(succeeded=1)),
        )
        cost("cancel request (by id)", lambda: service.request_cancel(ref))
        cost("cancel request again (no-op)", lambda: service.request_cancel(ref))
        cost("finish cancelled (by id)", lambda: service.finish_cancelled(ref))
        cost("get job", lambda: service.get(ref))
        cost("messages after 0 (7 messages)", lambda: service.messages_after(ref, 0))
        return costs


def main() -> None:
    costs = measure_costs()
    width = max(len(c.operation) for c in costs)
    print(f"{'operation':<{width}}  requests  by operation")
    for c in costs:
        detail = ", ".join(f"{name} {n}" for name, n in sorted(c.calls.items()))
        print(f"{c.operation:<{width}}  {c.requests:>8}  {detail}")


if __name__ == "__main__":
    main()
