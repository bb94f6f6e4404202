"""Validation at the boundary: bad input is refused with the field's name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.models import (
    MAX_PARAMS_BYTES,
    Counters,
    JobRequest,
    Priority,
    ProgressDelta,
    RetryPolicy,
)


def _loc(error: ValidationError) -> list[tuple[Any, ...]]:
    return [e["loc"] for e in error.errors()]


def test_retry_policy_defaults_are_the_documented_ones() -> None:
    policy = JobRequest(type="demo").retry
    assert (policy.max_retries, policy.initial_backoff_ms) == (3, 1000)
    assert (policy.backoff_multiplier, policy.max_backoff_ms) == (2.0, 60000)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy()
    assert [policy.backoff_ms(n) for n in range(8)] == [
        1000,
        2000,
        4000,
        8000,
        16000,
        32000,
        60000,
        60000,
    ]


def test_request_reads_camel_case_json() -> None:
    request = JobRequest.model_validate_json(
        '{"type": "csv_import", "priority": "high", "timeoutSeconds": 60,'
        ' "retry": {"maxRetries": 1, "initialBackoffMs": 10}}'
    )
    assert request.priority is Priority.HIGH
    assert request.timeout_seconds == 60
    assert request.retry.max_retries == 1
    assert request.model_dump(mode="json")["timeoutSeconds"] == 60


def test_a_pause_lasts_seven_days_unless_the_job_asks_for_its_own_bound() -> None:
    assert JobRequest(type="demo").max_pause_seconds == 7 * 24 * 3600
    request = JobRequest.model_validate_json('{"type": "demo", "maxPauseSeconds": 3600}')
    assert request.max_pause_seconds == 3600
    assert request.model_dump(mode="json")["maxPauseSeconds"] == 3600


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "Demo!"}, ("type",)),
        ({"type": "demo", "priority": "urgent"}, ("priority",)),
        ({"type": "demo", "timeoutSeconds": 0}, ("timeoutSeconds",)),
        ({"type": "demo", "maxPauseSeconds": 59}, ("maxPauseSeconds",)),
        ({"type": "demo", "maxPauseSeconds": 30 * 24 * 3600 + 1}, ("maxPauseSeconds",)),
        ({"type": "demo", "retry": {"maxRetries": -1}}, ("retry", "maxRetries")),
        ({"type": "demo", "params": []}, ("params",)),
        ({"type": "demo", "surprise": 1}, ("surprise",)),
        (
            {"type": "demo", "schedule": {"scheduledFor": "2026-01-01T00:00:00"}},
            ("schedule", "scheduledFor"),
        ),
    ],
)
def test_bad_request_names_the_field(body: dict[str, Any], field: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as raised:
        JobRequest.model_validate(body)
    assert field in _loc(raised.value)


def test_params_are_bounded_so_a_job_item_stays_small() -> None:
    with pytest.raises(ValidationError, match="params is"):
        JobRequest(type="demo", params={"blob": "x" * MAX_PARAMS_BYTES})


def test_retry_cap_below_start_is_refused() -> None:
    with pytest.raises(ValidationError, match="maxBackoffMs"):
        RetryPolicy(initial_backoff_ms=5000, max_backoff_ms=1000)


def test_counters_percent_and_delta() -> None:
    counters = ProgressDelta(succeeded=2, failed=1, skipped=1, total=8).apply_to(Counters())
    assert counters == Counters(total=8, processed=4, succeeded=2, failed=1, skipped=1)
    assert counters.percent == 50.0
    assert Counters().percent == 0.0
    assert Counters(total=3, processed=1).percent == 33.3


def test_priority_ranks_sort_most_urgent_first() -> None:
    ranked = sorted(Priority, key=lambda p: p.rank)
    assert ranked == [Priority.HIGH, Priority.NORMAL, Priority.LOW]
