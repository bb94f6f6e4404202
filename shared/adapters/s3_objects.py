"""`shared.jobs.objects.ObjectReader` on Amazon S3: the only module job types reach S3 through.

A GetObject whose body is streamed in chunks, so a reader that stops early never downloads the
rest. S3's answers are mapped once to the port's coded errors: missing bucket or key and refusals
are permanent; throttling, server errors and broken streams are worth a retry (after botocore's
own standard-mode retries have given up).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.jobs.objects import (
    ObjectNotFound,
    ObjectReadError,
    ObjectUnavailable,
    ObjectUnreadable,
)

CHUNK_BYTES: Final = 256 * 1024
S3_CONFIG: Final = Config(retries={"mode": "standard", "total_max_attempts": 5})
_NOT_FOUND: Final = {"NoSuchBucket": "s3_bucket_not_found", "NoSuchKey": "s3_object_not_found"}
_RETRYABLE_CODES: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
    }
)


class S3Objects:
    def __init__(self, client: Any, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        # `client` is a boto3 "s3" client (the project has no type stubs for S3).
        self._client = client
        self._chunk_bytes = chunk_bytes

    def open(self, bucket: str, key: str) -> Iterator[bytes]:
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise read_error(exc, bucket, key) from exc
        except BotoCoreError as exc:
            raise ObjectUnavailable("s3_unavailable", f"s3://{bucket}/{key}: {exc}") from exc
        return self._chunks(response["Body"], bucket, key)

    def _chunks(self, body: Any, bucket: str, key: str) -> Iterator[bytes]:
        try:
            while chunk := body.read(self._chunk_bytes):
                yield chunk
        except BotoCoreError as exc:
            raise ObjectUnavailable("s3_unavailable", f"s3://{bucket}/{key}: {exc}") from exc
        finally:
            body.close()  # also when the reader stops early: the connection is not drained


def read_error(exc: ClientError, bucket: str, key: str) -> ObjectReadError:
    """The port's error for an S3 error answer."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    where = f"s3://{bucket}/{key}"
    if code in _NOT_FOUND:
        return ObjectNotFound(_NOT_FOUND[code], f"{where} does not exist ({code})")
    if code == "404" or status == 404:
        return ObjectNotFound("s3_object_not_found", f"{where} does not exist")
    if code in _RETRYABLE_CODES or status == 429 or status >= 500:
        return ObjectUnavailable("s3_unavailable", f"{where}: {code or status} (worth a retry)")
    if code == "AccessDenied" or status == 403:
        return ObjectUnreadable("s3_access_denied", f"{where}: access denied")
    return ObjectUnreadable("s3_read_rejected", f"{where}: {code or status}")


@cache
def default_s3_objects() -> S3Objects:
    """One client per cold start, from the Lambda's region and credentials.

    boto3 reads `AWS_ENDPOINT_URL` itself, so the local stack swaps nothing but the endpoint.
    """
    return S3Objects(boto3.client("s3", config=S3_CONFIG))
