"""Secrets Manager: Tether's signing keys, re-read every five minutes in warm processes.

A handler builds its context once per container, so a key read only at cold start would never
see a rotation. `RotatingSecret` is the `KeySource` the context holds instead: it reads the
secret's AWSCURRENT value (which signs) and AWSPREVIOUS value (which still verifies, so tokens
and cursors signed just before a rotation stay valid) and serves them from memory until
`max_age` has passed on the injected clock, so a rotated key reaches warm Lambdas within five
minutes.

Powertools' parameters utility would be the usual choice, but its cache does not fit: it keys
on the secret's name alone (the current and previous version would overwrite each other) and
expires on `datetime.now()`, which no injected clock can drive.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from shared.constants import SERVICE_NAME
from shared.domain.clock import Clock
from shared.domain.keys import SigningKeys

SECRET_MAX_AGE: Final = timedelta(minutes=5)  # a rotated key reaches warm Lambdas within this
_CURRENT: Final = "AWSCURRENT"
_PREVIOUS: Final = "AWSPREVIOUS"

logger = Logger(service=SERVICE_NAME)


class RotatingSecret:
    """`shared.domain.keys.KeySource` on a Secrets Manager secret holding one key."""

    def __init__(
        self, client: Any, arn: str, *, clock: Clock, max_age: timedelta = SECRET_MAX_AGE
    ) -> None:
        # `client` is a boto3 "secretsmanager" client (no type stubs for it in the project).
        self._client = client
        self._arn = arn
        self._clock = clock
        self._max_age = max_age
        self._lock = threading.Lock()
        self._keys: SigningKeys | None = None
        self._read_at: datetime | None = None

    def keys(self) -> SigningKeys:
        with self._lock:
            now = self._clock.now()
            if self._keys is None or self._stale(now):
                self._refresh(now)
            assert self._keys is not None
            return self._keys

    def _stale(self, now: datetime) -> bool:
        # A clock that moved back also re-reads: the age of what we hold is unknown then.
        assert self._read_at is not None
        return not self._read_at <= now < self._read_at + self._max_age

    def _refresh(self, now: datetime) -> None:
        try:
            current, previous = self._read(_CURRENT), self._read(_PREVIOUS)
        except (ClientError, BotoCoreError):
            if self._keys is None:
                raise  # nothing to sign with: the cold start fails loudly
            # A warm process keeps the keys it has and tries again after another max_age,
            # rather than failing every request while Secrets Manager is unreachable.
            logger.exception("could not re-read a signing key; keeping the one in memory")
            self._read_at = now
            return
        if not current:
            raise ValueError("the secret holds no key")
        self._keys, self._read_at = SigningKeys(current, previous), now

    def _read(self, stage: str) -> bytes | None:
        try:
            answer = self._client.get_secret_value(SecretId=self._arn, VersionStage=stage)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if stage == _PREVIOUS and code == "ResourceNotFoundException":
                return None  # never rotated
            raise
        if "SecretString" in answer:
            return str(answer["SecretString"]).encode()
        return bytes(answer["SecretBinary"])
