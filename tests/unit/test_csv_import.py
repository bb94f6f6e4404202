"""The `csv_import` job type without AWS: row validation, batches, errors, read failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from shared.jobs.base import PermanentJobError, TransientJobError, type_result
from shared.jobs.csv_import import CsvImportJob, RowError, validate_row
from shared.jobs.demo import DemoJob
from shared.jobs.objects import ObjectNotFound, ObjectReadError, ObjectUnavailable
from shared.jobs.registry import JOB_TYPES

HEADER = ["email", "name", "age"]
PARAMS = {"bucket": "imports", "key": "contacts.csv"}


@dataclass
class FakeObjects:
    """An in-memory `ObjectReader`: objects by key, served in small chunks."""

    objects: dict[str, bytes] = field(default_factory=dict)
    chunk: int = 7
    fail_open: ObjectReadError | None = None
    fail_after_chunks: ObjectReadError | None = None
    closed: int = 0

    def open(self, bucket: str, key: str) -> Iterator[bytes]:
        if self.fail_open is not None:
            raise self.fail_open
        if key not in self.objects:
            raise ObjectNotFound("s3_object_not_found", f"s3://{bucket}/{key} does not exist")
        return self._chunks(self.objects[key])

    def _chunks(self, data: bytes) -> Iterator[bytes]:
        try:
            for start in range(0, len(data), self.chunk):
                yield data[start : start + self.chunk]
            if self.fail_after_chunks is not None:
                raise self.fail_after_chunks
        finally:
            self.closed += 1


def _job(text: str, **objects: bytes) -> tuple[CsvImportJob, FakeObjects]:
    fake = FakeObjects({"contacts.csv": text.encode(), **objects})
    return CsvImportJob(lambda: fake), fake


CONTACTS = (
    "email,name,age\n"
    "ann@example.com,Ann,34\n"  # 1 ok
    "not-an-email,Bob,20\n"  # 2 bad email
    "\n"  # blank: not a row
    'cy@example.com,"Cy, the ""third""",\n'  # 3 ok: quoted, blank age
    "dee@example.com,,200\n"  # 4 bad name and age
    "eve@example.com,Eve\n"  # 5 too few fields
    "fay@example.com,Fay,x\n"  # 6 bad age
)


# -- row validation ---------------------------------------------------------------------------


def test_a_valid_row_has_no_errors_and_a_blank_age_is_unknown() -> None:
    assert validate_row(1, HEADER, ["ann@example.com", " Ann ", "34"]) == []
    assert validate_row(1, HEADER, ["ann@example.com", "Ann", " "]) == []
    assert validate_row(1, ["name", "email"], ["Ann", "ann@example.com"]) == []


@pytest.mark.parametrize(
    ("values", "field_name", "text"),
    [
        (["ann.example.com", "Ann", "1"], "email", "not an email address"),
        (["ann@example", "Ann", "1"], "email", "not an email address"),
        (["a nn@example.com", "Ann", "1"], "email", "not an email address"),
        (["ann@example.com", "  ", "1"], "name", "at least 1 character"),
        (["ann@example.com", "Ann", "-1"], "age", "greater than or equal to 0"),
        (["ann@example.com", "Ann", "151"], "age", "less than or equal to 150"),
        (["ann@example.com", "Ann", "old"], "age", "valid integer"),
    ],
)
def test_a_bad_field_is_reported_by_row_field_and_message(
    values: list[str], field_name: str, text: str
) -> None:
    # When the row is validated
    errors = validate_row(7, HEADER, values)
    # Then exactly that field is reported, with the data row number
    assert [(e.row, e.field) for e in errors] == [(7, field_name)]
    assert text in errors[0].message


def test_every_bad_field_of_a_row_is_reported_and_values_are_not_echoed() -> None:
    errors = validate_row(2, HEADER, ["secret-value", "", "999"])
    assert [e.field for e in errors] == ["email", "name", "age"]
    assert all("secret-value" not in e.message for e in errors)


def test_a_row_with_the_wrong_number_of_fields_is_one_error() -> None:
    assert validate_row(3, HEADER, ["ann@example.com", "Ann"]) == [
        RowError(3, "row", "has 2 fields; the header has 3")
    ]


# -- prepare and process ----------------------------------------------------------------------


def test_prepare_counts_data_rows_without_header_or_blank_lines() -> None:
    job, _ = _job(CONTACTS)
    assert job.prepare(PARAMS) == 6


def test_batches_count_good_and_bad_rows_and_end_at_the_last_row() -> None:
    # Given the contacts file read in batches of 4
    job, fake = _job(CONTACTS)
    # When both batches run
    first = job.process(PARAMS, 0, 4)
    second = job.process(PARAMS, first.next_cursor, 4)
    # Then every row was counted once, bad rows as failed, and the stream was closed each time
    assert (first.succeeded, first.failed, first.next_cursor, first.done) == (2, 2, 4, False)
    assert (second.succeeded, second.failed, second.next_cursor, second.done) == (0, 2, 6, True)
    assert fake.closed == 2


def test_a_batch_ending_exactly_at_the_last_row_is_done() -> None:
    job, _ = _job(CONTACTS)
    assert job.process(PARAMS, 3, 3).done


def test_the_delimiter_and_column_order_come_from_the_params_and_header() -> None:
    job, _ = _job("Name;EMAIL\nAnn;ann@example.com\nBob;bob\n")
    outcome = job.process({**PARAMS, "delimiter": ";"}, 0, 10)
    assert (outcome.succeeded, outcome.failed, outcome.done) == (1, 1, True)


def test_a_utf8_bom_and_crlf_line_ends_are_read_as_text() -> None:
    job, _ = _job("\ufeffemail,name\r\nzoë@example.com,Zoë\r\n")
    assert job.process(PARAMS, 0, 10).succeeded == 1


def test_the_result_keeps_the_first_max_errors_in_file_order() -> None:
    job, _ = _job(CONTACTS)
    result = type_result(job, {**PARAMS, "maxErrors": 3})
    assert [(e["row"], e["field"]) for e in result["errors"]] == [
        (2, "email"),
        (4, "name"),
        (4, "age"),
    ]
    assert type_result(job, PARAMS)["errors"][-1]["row"] == 6
    assert type_result(job, {**PARAMS, "maxErrors": 0}) == {"errors": []}


def test_the_result_says_why_errors_are_missing_instead_of_failing() -> None:
    job, fake = _job(CONTACTS)
    fake.fail_open = ObjectUnavailable("s3_unavailable", "SlowDown")
    result = type_result(job, PARAMS)
    assert result["errors"] == []
    assert result["errorsUnavailable"]["code"] == "s3_unavailable"


def test_types_without_a_result_add_nothing_and_csv_import_is_registered() -> None:
    assert type_result(DemoJob(), {"items": 1}) == {}
    assert isinstance(JOB_TYPES["csv_import"], CsvImportJob)


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "csv_empty"),
        ("email,age\nann@example.com,3\n", "csv_missing_columns"),
        ('email,name\n"ann@example.com,Ann\n', "csv_malformed"),
    ],
)
def test_an_unusable_file_fails_the_job(text: str, code: str) -> None:
    job, _ = _job(text)
    with pytest.raises(PermanentJobError) as raised:
        job.prepare(PARAMS)
    assert raised.value.code == code


def test_a_file_that_is_not_utf8_fails_the_job() -> None:
    fake = FakeObjects({"contacts.csv": "email,name\nann@example.com,Änn\n".encode("latin-1")})
    with pytest.raises(PermanentJobError) as raised:
        CsvImportJob(lambda: fake).prepare(PARAMS)
    assert raised.value.code == "csv_not_utf8"


def test_a_missing_object_is_a_permanent_error_of_its_exact_type() -> None:
    # The runner tells permanent from retryable by the exception's exact type name.
    job, _ = _job(CONTACTS)
    with pytest.raises(PermanentJobError) as raised:
        job.prepare({**PARAMS, "key": "nope.csv"})
    assert type(raised.value) is PermanentJobError
    assert raised.value.code == "s3_object_not_found"


def test_a_stream_broken_mid_batch_is_a_transient_error() -> None:
    job, fake = _job(CONTACTS)
    fake.fail_after_chunks = ObjectUnavailable("s3_unavailable", "connection reset")
    with pytest.raises(TransientJobError) as raised:
        job.process(PARAMS, 0, 100)
    assert type(raised.value) is TransientJobError
    assert raised.value.code == "s3_unavailable"


def test_an_object_that_shrank_since_prepare_fails_the_job() -> None:
    job, _ = _job(CONTACTS)
    with pytest.raises(PermanentJobError) as raised:
        job.process(PARAMS, 6, 4)
    assert raised.value.code == "csv_object_changed"


@pytest.mark.parametrize(
    "params",
    [
        {"bucket": "imports"},
        {**PARAMS, "bucket": "Not_A_Bucket"},
        {**PARAMS, "delimiter": ";;"},
        {**PARAMS, "delimiter": '"'},
        {**PARAMS, "maxErrors": 101},
        {**PARAMS, "extra": 1},
    ],
)
def test_bad_params_fail_the_job(params: dict[str, object]) -> None:
    job, _ = _job(CONTACTS)
    with pytest.raises(PermanentJobError) as raised:
        job.prepare(params)
    assert raised.value.code == "invalid_params"
