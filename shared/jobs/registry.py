"""Job types by name: the one table the runner looks a job's `type` up in."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from shared.jobs.base import JobType, UnknownJobType
from shared.jobs.demo import DemoJob

JOB_TYPES: Final[Mapping[str, JobType]] = MappingProxyType({DemoJob.name: DemoJob()})


def job_type(name: str, types: Mapping[str, JobType] = JOB_TYPES) -> JobType:
    try:
        return types[name]
    except KeyError:
        raise UnknownJobType(name) from None
