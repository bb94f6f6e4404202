"""The port job types read stored objects through (S3 in the service, a fake in unit tests).

`open` returns the object's bytes as chunks, so a job type can stop reading early. Failures are
values with codes, split by what a retry can do: `ObjectNotFound` and `ObjectUnreadable` never
get better; `ObjectUnavailable` (throttled, 5xx, a broken stream) may. They are not job errors
themselves: the runner recognises a permanent failure by its exact type name, so a job type
re-raises them as `PermanentJobError` / `TransientJobError` with the same code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class ObjectReadError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ObjectNotFound(ObjectReadError):
    """The bucket or the key does not exist."""


class ObjectUnreadable(ObjectReadError):
    """The store refused the read for good (access denied, an invalid name, ...)."""


class ObjectUnavailable(ObjectReadError):
    """The read failed in a way worth retrying: throttled, a server error, a broken stream."""


class ObjectReader(Protocol):
    def open(self, bucket: str, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; raises ObjectReadError, also while iterating."""
        ...
