"""Job types by name: the one table the runner looks a job's `type` up in, and the checks a job
request passes against it before anything is stored (`JobCatalog`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from pydantic import ValidationError

from shared.domain.errors import FieldError, InvalidRequest
from shared.jobs.base import JobType, RequestScope, UnknownJobType
from shared.jobs.csv_import import CsvImportJob
from shared.jobs.demo import DemoJob
from shared.jobs.objects import ObjectReader

if TYPE_CHECKING:
    from shared.domain.models import JobRequest

Location = tuple[str | int, ...]


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


@dataclass(frozen=True, slots=True)
class JobCatalog:
    """What a job request must meet to be stored: a registered type, params its own model
    accepts, and data the tenant may read (`import_bucket`: where csv_import reads from)."""

    import_bucket: str | None = None
    types: Mapping[str, JobType] = field(default_factory=lambda: JOB_TYPES)

    def check(self, request: JobRequest, tenant_id: str, loc: Location = ("body",)) -> None:
        """InvalidRequest (422) naming every refused field under `loc`; None when it fits."""
        kind = self.types.get(request.type)
        if kind is None:
            known = ", ".join(sorted(self.types))
            message = f"unknown job type {request.type!r}; the known types are: {known}"
            raise InvalidRequest([FieldError((*loc, "type"), "unknown_job_type", message)])
        scope = RequestScope(tenant_id=tenant_id, import_bucket=self.import_bucket)
        try:
            kind.params_model.model_validate(request.params, context=scope)
        except ValidationError as exc:
            raise InvalidRequest(
                [
                    FieldError((*loc, "params", *error["loc"]), error["type"], error["msg"])
                    for error in exc.errors()
                ]
            ) from None
