"""`demo`: N numbered items, an optional delay per item, and failures injected at chosen items.

Params: `items` (N), `delayMs` per item (default 0), `transientFailures` (item indexes whose
batch fails with a retryable error; an index listed k times fails the first k tries of its
batch, so a test can drive several backoffs) and `permanentFailures` (item indexes whose batch
fails for good).
"""

from __future__ import annotations

import time
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from shared.jobs.base import BatchOutcome, PermanentJobError, TransientJobError

MAX_DEMO_ITEMS: Final = 10_000_000


class DemoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    items: int = Field(ge=0, le=MAX_DEMO_ITEMS, strict=True)
    delay_ms: int = Field(default=0, ge=0, le=60_000, alias="delayMs", strict=True)
    transient_failures: list[StrictInt] = Field(default_factory=list, alias="transientFailures")
    permanent_failures: list[StrictInt] = Field(default_factory=list, alias="permanentFailures")


def _params(params: dict[str, Any]) -> DemoParams:
    try:
        return DemoParams.model_validate(params)
    except ValidationError as exc:
        raise PermanentJobError("invalid_params", str(exc)) from exc


class DemoJob:
    name = "demo"
    params_model = DemoParams

    def __init__(self, sleep: Any = time.sleep) -> None:
        self._sleep = sleep

    def prepare(self, params: dict[str, Any]) -> int:
        return _params(params).items

    def process(
        self, params: dict[str, Any], cursor: int, batch_size: int, *, attempt: int = 1
    ) -> BatchOutcome:
        demo = _params(params)
        end = min(cursor + batch_size, demo.items)
        for item in range(cursor, end):
            if item in demo.permanent_failures:
                raise PermanentJobError("item_failed", f"item {item} failed permanently")
            if demo.transient_failures.count(item) >= attempt:
                raise TransientJobError("item_unavailable", f"item {item} failed (try {attempt})")
            if demo.delay_ms:
                self._sleep(demo.delay_ms / 1000)
        return BatchOutcome(
            succeeded=end - cursor, failed=0, skipped=0, next_cursor=end, done=end >= demo.items
        )
