"""Rotated signing keys reach a warm handler context within five minutes (injected clock).

The HTTP handler's context is built once per container; its resume key and cursor key live in
Secrets Manager (moto) and are re-read every five minutes: before that the old key signs,
after it the new one, and what the old key signed still verifies until a second rotation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import jwt
import pytest

from shared import constants as c
from shared.adapters.cursor import CursorCodec
from shared.auth_settings import AuthSettings
from shared.domain.clock import ManualClock
from shared.domain.errors import InvalidCursor, Unauthenticated
from shared.services.auth import RESUME_AUDIENCE
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import HttpApiContext, cursor_codec, http_api_context

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OLD, NEW, NEWER = ("o" * 48, "n" * 48, "w" * 48)


@pytest.fixture
def secrets(dynamodb: DynamoDBClient) -> Any:  # moto is on: the dynamodb fixture started it
    del dynamodb
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def arns(
    secrets: Any, table_names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    created = {
        name: secrets.create_secret(Name=f"tether/{name}", SecretString=OLD)["ARN"]
        for name in ("resume", "cursor")
    }
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment.update(
        {
            c.ENV_CURSOR_SECRET_ARN: created["cursor"],
            c.ENV_RESUME_SIGNING_KEY_SECRET_ARN: created["resume"],
            c.ENV_AUTH_HS256_SECRET: "user-secret-for-tests-0123456789abcdef",
        }
    )
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return created


def _warm_context(dynamodb: DynamoDBClient, clock: ManualClock) -> HttpApiContext:
    """What `functions.http_api.context()` builds once per container, on an injected clock."""
    return http_api_context(TetherSettings(), AuthSettings(), client=dynamodb, clock=clock)


def _mint(context: HttpApiContext, job_id: str) -> str:
    return context.authenticator.resume_tokens.mint(
        tenant_id="acme", subject="alice", job_id=job_id
    )


def _signed_with(token: str, key: str) -> bool:
    try:
        # The test clock is not the wall clock: only the signature is in question here.
        jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=RESUME_AUDIENCE,
            options={"verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        return False
    return True


def test_a_rotated_resume_key_signs_within_five_minutes_and_the_old_one_still_verifies(
    dynamodb: DynamoDBClient, clock: ManualClock, secrets: Any, arns: dict[str, str]
) -> None:
    # Given a warm context that signed a resume token with the current key
    context = _warm_context(dynamodb, clock)
    before = _mint(context, "j1")
    assert _signed_with(before, OLD)

    # When the key is rotated in Secrets Manager
    secrets.put_secret_value(SecretId=arns["resume"], SecretString=NEW)

    # Then for the rest of five minutes the warm context still signs with the old key
    clock.advance(minutes=4, seconds=59)
    assert _signed_with(_mint(context, "j2"), OLD)
    # And from five minutes on with the new one
    clock.advance(seconds=1)
    after = _mint(context, "j3")
    assert _signed_with(after, NEW)
    # And the token the old key signed is still accepted (it is AWSPREVIOUS now)
    assert context.authenticator.authenticate(before).job_id == "j1"
    assert context.authenticator.authenticate(after).job_id == "j3"

    # When the key rotates a second time, five minutes later the oldest key is retired
    secrets.put_secret_value(SecretId=arns["resume"], SecretString=NEWER)
    clock.advance(minutes=5)
    with pytest.raises(Unauthenticated):
        context.authenticator.authenticate(before)
    assert context.authenticator.authenticate(after).job_id == "j3"
    assert _signed_with(_mint(context, "j4"), NEWER)


def test_a_rotated_cursor_key_reaches_a_warm_codec_and_old_cursors_still_decode(
    clock: ManualClock, secrets: Any, arns: dict[str, str]
) -> None:
    codec = cursor_codec(TetherSettings(), clock)
    old_cursor = codec.encode("acme", {"k": 1})
    secrets.put_secret_value(SecretId=arns["cursor"], SecretString=NEW)

    clock.advance(minutes=4, seconds=59)
    assert codec.encode("acme", {"k": 2}) == CursorCodec(OLD.encode()).encode("acme", {"k": 2})
    clock.advance(seconds=1)
    assert codec.encode("acme", {"k": 2}) == CursorCodec(NEW.encode()).encode("acme", {"k": 2})
    assert codec.decode("acme", old_cursor) == {"k": 1}

    secrets.put_secret_value(SecretId=arns["cursor"], SecretString=NEWER)
    clock.advance(minutes=5)
    with pytest.raises(InvalidCursor):
        codec.decode("acme", old_cursor)


def test_a_warm_context_keeps_its_keys_while_secrets_manager_fails(
    dynamodb: DynamoDBClient, clock: ManualClock, secrets: Any, arns: dict[str, str]
) -> None:
    # Given a warm context, and the secret then unreadable (deleted: every read fails)
    context = _warm_context(dynamodb, clock)
    before = _mint(context, "j1")
    secrets.delete_secret(SecretId=arns["resume"], ForceDeleteWithoutRecovery=True)

    # When its keys are due to be read again
    clock.advance(minutes=5)

    # Then it goes on signing and verifying with the keys it holds
    assert _signed_with(_mint(context, "j2"), OLD)
    assert context.authenticator.authenticate(before).job_id == "j1"
    # And a context built now (a cold start) fails loudly rather than sign with nothing
    with pytest.raises(Exception, match="ResourceNotFoundException"):
        _warm_context(dynamodb, clock)


def test_the_clock_moving_back_reads_the_keys_again(
    clock: ManualClock, secrets: Any, arns: dict[str, str]
) -> None:
    codec = cursor_codec(TetherSettings(), clock)
    secrets.put_secret_value(SecretId=arns["cursor"], SecretString=NEW)
    clock.advance(minutes=-1)  # the age of what it holds is unknown now
    assert codec.encode("acme", {}) == CursorCodec(NEW.encode()).encode("acme", {})
