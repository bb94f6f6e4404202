"""What each operation costs in DynamoDB requests: a regression test on the bill, not on time."""

from __future__ import annotations

from tests.bench.store_costs import measure_costs

EXPECTED = {
    "create job (+ status message)": {"TransactWriteItems": 1},
    "start: transition, job held": {"TransactWriteItems": 1},
    "progress, announced, job held": {"TransactWriteItems": 1},
    "progress, coalesced, job held": {"PutItem": 1},
    "progress, announced, job read first": {"GetItem": 1, "TransactWriteItems": 1},
    "cancel request (by id)": {"GetItem": 1, "TransactWriteItems": 1},
    "cancel request again (no-op)": {"GetItem": 1},
    "finish cancelled (by id)": {"GetItem": 1, "TransactWriteItems": 1},
    "get job": {"GetItem": 1},
    "messages after 0 (7 messages)": {"GetItem": 1, "Query": 1},
}


def test_each_operation_sends_the_fewest_requests() -> None:
    costs = {cost.operation: dict(cost.calls) for cost in measure_costs()}
    assert costs == EXPECTED
