"""`csv_import` as whole JobRunner executions under moto, reading its CSV from moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from shared.adapters.s3_objects import default_s3_objects
from shared.domain.models import JobStatus
from tests.integration.runner.harness import BATCH_SIZE, Stack

BUCKET = "tether-imports"
ROWS = 2 * BATCH_SIZE + 50  # three batches, the last one short


@pytest.fixture
def s3(stack: Stack) -> Iterator[Any]:
    """moto's S3 (inside the stack's mock) with one bucket; the job's S3 client built fresh."""
    default_s3_objects.cache_clear()  # a client from another test's mock must not leak in
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    default_s3_objects.cache_clear()


def _contacts() -> tuple[str, list[int]]:
    """`ROWS` contacts, every 7th with a bad email and every 50th with a bad age too."""
    lines = ["email,name,age"]
    bad_rows = []
    for row in range(1, ROWS + 1):
        email = f"user{row}@example.com" if row % 7 else f"user{row}.example.com"
        age = "999" if row % 50 == 0 else str(row % 100)
        lines.append(f"{email},User {row},{age}")
        if row % 7 == 0 or row % 50 == 0:
            bad_rows.append(row)
    return "\n".join(lines) + "\n", bad_rows


def test_a_csv_import_completes_with_exact_counts_of_good_and_bad_rows(
    stack: Stack, s3: Any
) -> None:
    # Given a CSV object with good rows and bad rows across three batches
    text, bad_rows = _contacts()
    s3.put_object(Bucket=BUCKET, Key="imports/acme/contacts.csv", Body=text.encode())
    # When it is imported as a whole execution
    ref, arn = stack.launch(
        {"bucket": BUCKET, "key": "imports/acme/contacts.csv"}, kind="csv_import"
    )
    execution = stack.wait(arn)
    # Then the job completed; bad rows were counted as failed, never fatal
    assert execution["status"] == "SUCCEEDED"
    job = stack.service.get(ref)
    assert job.status is JobStatus.COMPLETED
    counters = job.counters
    assert (counters.total, counters.processed) == (ROWS, ROWS)
    assert (counters.succeeded, counters.failed) == (ROWS - len(bad_rows), len(bad_rows))
    assert stack.batch_calls == [0, BATCH_SIZE, 2 * BATCH_SIZE]


def test_a_csv_import_reports_its_first_row_errors_in_the_result(stack: Stack, s3: Any) -> None:
    # Given a CSV object with bad rows and room for three errors
    text, _bad_rows = _contacts()
    s3.put_object(Bucket=BUCKET, Key="imports/acme/report.csv", Body=text.encode())
    params = {"bucket": BUCKET, "key": "imports/acme/report.csv", "maxErrors": 3}
    # When it is imported
    ref, arn = stack.launch(params, kind="csv_import")
    stack.wait(arn)
    # Then the completed job's result holds the first three errors next to the counters
    result = stack.service.get(ref).result or {}
    assert [(e["row"], e["field"]) for e in result.get("errors", [])] == [
        (7, "email"),
        (14, "email"),
        (21, "email"),
    ]
    assert result["counters"]["failed"] > 3


@pytest.mark.parametrize(
    ("bucket", "code"),
    [(BUCKET, "s3_object_not_found"), ("no-such-bucket", "s3_bucket_not_found")],
)
def test_a_csv_import_of_a_missing_object_fails_with_a_permanent_code(
    stack: Stack, s3: Any, bucket: str, code: str
) -> None:
    # Given no object at the key (or no bucket at all)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    # When its import runs
    ref, arn = stack.launch(
        {"bucket": bucket, "key": "imports/acme/missing.csv"}, kind="csv_import"
    )
    execution = stack.wait(arn)
    # Then the job failed at once with the code: a permanent error is not retried
    assert execution["status"] in {"SUCCEEDED", "FAILED"}
    job = stack.service.get(ref)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == code
    assert len(job.attempts) == 1
