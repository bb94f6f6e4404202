"""The S3 adapter of the `ObjectReader` port: moto's S3 for real answers, stubs for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from shared.adapters.s3_objects import S3Objects
from shared.jobs.objects import ObjectNotFound, ObjectUnavailable, ObjectUnreadable

BUCKET = "tether-imports"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_an_object_is_read_in_chunks(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="a.csv", Body=b"0123456789")
    assert list(S3Objects(s3, chunk_bytes=4).open(BUCKET, "a.csv")) == [b"0123", b"4567", b"89"]


@pytest.mark.parametrize(
    ("bucket", "code"),
    [(BUCKET, "s3_object_not_found"), ("no-such-bucket", "s3_bucket_not_found")],
)
def test_a_missing_key_or_bucket_is_not_found(s3: Any, bucket: str, code: str) -> None:
    with pytest.raises(ObjectNotFound) as raised:
        S3Objects(s3).open(bucket, "missing.csv")
    assert raised.value.code == code


class StubS3:
    """A client whose GetObject answers with a given S3 error."""

    def __init__(self, code: str, status: int) -> None:
        response: Any = {
            "Error": {"Code": code, "Message": code},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        self._error = ClientError(response, "GetObject")

    def get_object(self, **_: Any) -> dict[str, Any]:
        raise self._error


@pytest.mark.parametrize(
    ("code", "status", "error", "error_code"),
    [
        ("SlowDown", 503, ObjectUnavailable, "s3_unavailable"),
        ("InternalError", 500, ObjectUnavailable, "s3_unavailable"),
        ("Whatever", 502, ObjectUnavailable, "s3_unavailable"),
        ("AccessDenied", 403, ObjectUnreadable, "s3_access_denied"),
        ("InvalidObjectState", 403, ObjectUnreadable, "s3_access_denied"),
        ("InvalidArgument", 400, ObjectUnreadable, "s3_read_rejected"),
        ("404", 404, ObjectNotFound, "s3_object_not_found"),
    ],
)
def test_s3_errors_map_to_what_a_retry_can_do(
    code: str, status: int, error: type[Exception], error_code: str
) -> None:
    with pytest.raises(error) as raised:
        S3Objects(StubS3(code, status)).open(BUCKET, "a.csv")
    assert getattr(raised.value, "code", None) == error_code


class BrokenBody:
    def __init__(self) -> None:
        self.closed = False

    def read(self, _size: int) -> bytes:
        raise ReadTimeoutError(endpoint_url="https://s3.example")

    def close(self) -> None:
        self.closed = True


def test_a_stream_broken_while_reading_is_unavailable_and_closed() -> None:
    body = BrokenBody()

    class Client:
        def get_object(self, **_: Any) -> dict[str, Any]:
            return {"Body": body}

    chunks = S3Objects(Client()).open(BUCKET, "a.csv")
    with pytest.raises(ObjectUnavailable):
        next(chunks)
    assert body.closed
