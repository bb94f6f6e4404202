"""`csv_import`: the rows of a CSV object in S3, each validated as a `Contact`.

Params: `bucket`, `key`, `delimiter` (default ","), `maxErrors` (row errors kept, default 20).
A job reads only its own tenant's uploads: checked with a `RequestScope`, `bucket` must be the
configured import bucket and `key` lie under `imports/{tenantId}/` (the same answer whether or
not the object exists: the check never asks S3).
The first line is the header (column names, any order and case; `email` and `name` required,
`age` optional, others ignored); blank lines are not rows. A row that does not validate is
counted as failed, never fatal; the first `maxErrors` errors (data row number from 1, field,
message; never the value, which may be personal data) go into the completed job's `result`.
A missing object or bucket, or a file that is not UTF-8 CSV, fails the job; a throttled or
broken read is retried with the job's retry policy.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.constants import IMPORTS_PREFIX
from shared.jobs.base import (
    BatchOutcome,
    JobTypeError,
    PermanentJobError,
    RequestScope,
    TransientJobError,
)
from shared.jobs.objects import ObjectReader, ObjectReadError, ObjectUnavailable

MAX_KEPT_ERRORS: Final = 100  # x ~250 bytes each stays well inside a job's 64 KB result
MAX_ERROR_MESSAGE: Final = 200
REQUIRED_COLUMNS: Final = ("email", "name")
# Deliberately loose (email-validator is not a dependency): one @, no spaces, a dotted domain.
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


class CsvImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True)

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    key: str = Field(min_length=1, max_length=1024)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    max_errors: int = Field(default=20, ge=0, le=MAX_KEPT_ERRORS, alias="maxErrors", strict=True)

    @field_validator("bucket")
    @classmethod
    def _the_import_bucket(cls, value: str, info: ValidationInfo) -> str:
        scope = info.context
        if not isinstance(scope, RequestScope):
            return value  # the runner re-reading params it was created with
        if scope.import_bucket is None:
            raise PydanticCustomError("import_bucket", "no import bucket is configured")
        if value != scope.import_bucket:
            raise PydanticCustomError(
                "import_bucket",
                "must be the import bucket, {bucket}",
                {"bucket": scope.import_bucket},
            )
        return value

    @field_validator("key")
    @classmethod
    def _the_tenants_prefix(cls, value: str, info: ValidationInfo) -> str:
        scope = info.context
        if not isinstance(scope, RequestScope):
            return value
        prefix = tenant_import_prefix(scope.tenant_id)
        segments = value[len(prefix) :].split("/")
        if not value.startswith(prefix) or not segments[-1] or {".", ".."} & set(segments):
            raise PydanticCustomError(
                "import_prefix", "must name an object under {prefix}", {"prefix": prefix}
            )
        return value

    @field_validator("delimiter")
    @classmethod
    def _not_a_quote_or_newline(cls, value: str) -> str:
        if value in {'"', "\r", "\n"}:
            raise ValueError("the delimiter cannot be a quote or a line break")
        return value


def tenant_import_prefix(tenant_id: str) -> str:
    """Where a tenant's uploads live in the import bucket (an upload there starts a job)."""
    return f"{IMPORTS_PREFIX}{tenant_id}/"


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise PydanticCustomError("email", "not an email address")
    return value


class Contact(BaseModel):
    """One row of a contacts CSV."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    email: Annotated[str, Field(max_length=254), AfterValidator(_email)]
    name: str = Field(min_length=1, max_length=200)
    age: int | None = Field(default=None, ge=0, le=150)

    @field_validator("age", mode="before")
    @classmethod
    def _blank_is_unknown(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # data row number: 1 is the line after the header
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


def validate_row(row: int, header: list[str], values: list[str]) -> list[RowError]:
    """The row's errors, one per bad field; empty when the row is a valid `Contact`."""
    if len(values) != len(header):
        message = f"has {len(values)} fields; the header has {len(header)}"
        return [RowError(row, "row", message)]
    try:
        Contact.model_validate(dict(zip(header, values, strict=True)))
    except ValidationError as exc:
        return [
            RowError(row, ".".join(map(str, err["loc"])) or "row", err["msg"][:MAX_ERROR_MESSAGE])
            for err in exc.errors()
        ]
    return []


class CsvImportJob:
    name = "csv_import"
    params_model = CsvImportParams

    def __init__(self, objects: Callable[[], ObjectReader]) -> None:
        # A provider, called on use: building the S3 client waits for the first csv_import job.
        self._objects = objects

    def prepare(self, params: dict[str, Any]) -> int:
        with self._rows(_params(params)) as (_header, rows):
            return sum(1 for _ in rows)

    def process(
        self,
        params: dict[str, Any],
        cursor: int,
        batch_size: int,
        *,
        attempt: int = 1,  # noqa: ARG002 - every try reads the object afresh
    ) -> BatchOutcome:
        # Each batch reads from the top and skips `cursor` rows: O(cursor) bytes per batch, so
        # O(n²/batch) for the job. Follow-up: keep the byte offset of row `cursor` next to the
        # cursor and start with a ranged GET (and pin the object's ETag at prepare).
        succeeded = failed = 0
        with self._rows(_params(params)) as (header, rows):
            batch = islice(rows, cursor, cursor + batch_size)
            for number, values in enumerate(batch, start=cursor + 1):
                if validate_row(number, header, values):
                    failed += 1
                else:
                    succeeded += 1
            done = next(rows, None) is None
        if succeeded + failed == 0 and batch_size > 0:
            message = f"the object has fewer than the {cursor + 1} rows it had when prepared"
            raise PermanentJobError("csv_object_changed", message)
        next_cursor = cursor + succeeded + failed
        return BatchOutcome(
            succeeded=succeeded, failed=failed, skipped=0, next_cursor=next_cursor, done=done
        )

    def result(self, params: dict[str, Any]) -> dict[str, Any]:
        """The first `maxErrors` row errors, found again by reading up to the last of them.

        Batches only count bad rows (the runner keeps counters, not lists), so the errors are
        collected once at the end; the read stops at the last error kept.
        """
        try:
            csv_params = _params(params)
            errors: list[RowError] = []
            if csv_params.max_errors > 0:
                with self._rows(csv_params) as (header, rows):
                    for number, values in enumerate(rows, start=1):
                        errors.extend(validate_row(number, header, values))
                        if len(errors) >= csv_params.max_errors:
                            break
        except JobTypeError as exc:
            # Never fail a finished import over its report: say why the errors are missing.
            return {"errors": [], "errorsUnavailable": {"code": exc.code, "message": exc.message}}
        return {"errors": [error.as_json() for error in errors[: csv_params.max_errors]]}

    @contextmanager
    def _rows(self, params: CsvImportParams) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
        """The header and the data rows, streamed; read failures become job errors."""
        reader: Any = None
        try:
            chunks = self._objects().open(params.bucket, params.key)
            text = io.TextIOWrapper(
                io.BufferedReader(_ChunkStream(chunks)), encoding="utf-8-sig", newline=""
            )
            with text:
                reader = csv.reader(text, delimiter=params.delimiter, strict=True)
                yield _header(next(reader, None)), (row for row in reader if row)
        except ObjectUnavailable as exc:
            raise TransientJobError(exc.code, exc.message) from exc
        except ObjectReadError as exc:
            raise PermanentJobError(exc.code, exc.message) from exc
        except UnicodeDecodeError as exc:
            raise PermanentJobError("csv_not_utf8", f"the object is not UTF-8: {exc}") from exc
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 0
            raise PermanentJobError("csv_malformed", f"line {line}: {exc}") from exc


def _params(params: dict[str, Any]) -> CsvImportParams:
    try:
        return CsvImportParams.model_validate(params)
    except ValidationError as exc:
        raise PermanentJobError("invalid_params", str(exc)) from exc


def _header(first: list[str] | None) -> list[str]:
    if first is None:
        raise PermanentJobError("csv_empty", "the object is empty: no header line")
    header = [name.strip().lower() for name in first]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise PermanentJobError("csv_missing_columns", f"the header lacks {', '.join(missing)}")
    return header


class _ChunkStream(io.RawIOBase):
    """The port's chunks as a raw binary stream, so `io.TextIOWrapper` can decode them."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()  # stop the download when a batch ends before the object does
        super().close()
