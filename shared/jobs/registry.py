"""Job types by name: the one table the runner looks a job's `type` up in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from shared.jobs.base import JobType, UnknownJobType
from shared.jobs.csv_import import CsvImportJob
from shared.jobs.demo import DemoJob
from shared.jobs.objects import ObjectReader


def _s3_objects() -> ObjectReader:
    # Imported on first use: job types stay free of boto3 until a csv_import job reads S3.
    from shared.adapters.s3_objects import default_s3_objects

    return default_s3_objects()


def job_types(objects: Callable[[], ObjectReader] = _s3_objects) -> Mapping[str, JobType]:
    """The built-in types; `objects` is where `csv_import` reads its CSV objects from."""
    return MappingProxyType({DemoJob.name: DemoJob(), CsvImportJob.name: CsvImportJob(objects)})


JOB_TYPES: Final[Mapping[str, JobType]] = job_types()


def job_type(name: str, types: Mapping[str, JobType] = JOB_TYPES) -> JobType:
    try:
        return types[name]
    except KeyError:
        raise UnknownJobType(name) from None
