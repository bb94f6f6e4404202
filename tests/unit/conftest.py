"""Unit fixtures: a job in any status, built by the pure domain (no AWS)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.domain import lifecycle
from shared.domain.clock import SequentialIds
from shared.domain.models import JobRecord, JobRequest

T0 = datetime(2026, 1, 1, tzinfo=UTC)

MakeJob = Callable[..., JobRecord]


def make_job(**request: object) -> JobRecord:
    """A freshly created job (queued unless scheduled), as the domain creates it."""
    change = lifecycle.new_job(
        JobRequest.model_validate({"type": "demo", **request}),
        tenant_id="acme",
        owner_id="u1",
        now=T0,
        ids=SequentialIds(),
    )
    return change.job


@pytest.fixture
def new_job() -> MakeJob:
    return make_job
