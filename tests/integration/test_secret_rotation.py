"""Rotated signing keys reach a warm handler context within five minutes (injected clock).

The HTTP handler's context is built once per container; its resume key and cursor key live in
Secrets Manager (moto) and are re-read every five minutes: before that the old key signs,
after it the new one, and what the old key signed still verifies until a second rotation.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError

from functions import authorizer, http_api
from infra.local.events import LocalLambdaContext
from shared import constants as c
from shared.adapters.cursor import CursorCodec
from shared.auth_settings import AuthSettings
from shared.domain.auth import Scope
from shared.domain.clock import ManualClock, SystemClock
from shared.domain.errors import InvalidCursor, Unauthenticated
from shared.runner.definition import TASK_STEPS
from shared.services.auth import RESUME_AUDIENCE, mint_dev_token
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import HttpApiContext, cursor_codec, http_api_context
from tests import aws_calls
from tests.integration.http import call_http_api

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OLD, NEW, NEWER = ("o" * 48, "n" * 48, "w" * 48)
USER_SECRET = "user-secret-for-tests-0123456789abcdef"


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
            c.ENV_AUTH_HS256_SECRET: USER_SECRET,
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


@pytest.fixture
def cold_handlers() -> Iterator[None]:
    """The HTTP handler and the authorizer start cold, and leave no context behind."""
    caches = (http_api.context, authorizer.authenticator)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


@pytest.mark.usefixtures("cold_handlers")
def test_handlers_configured_as_in_the_cloud_read_their_keys_from_secrets_manager(
    arns: dict[str, str],
) -> None:
    """The CDK app sets only the secrets' ARNs: on a cold start the HTTP handler reads the
    resume and cursor keys, the authorizer the resume key, from Secrets Manager."""
    user = mint_dev_token(
        USER_SECRET,
        tenant="acme",
        subject="alice",
        scopes=(Scope.JOBS_READ, Scope.JOBS_WRITE),
        ttl=timedelta(hours=1),
        clock=SystemClock(),
    )
    # Given two jobs created over HTTP (each answer carries a resume token)
    created = [
        call_http_api("POST", "/jobs", token=user, body={"type": "demo", "params": {"items": 1}})
        for _ in range(2)
    ]
    assert [answer.status for answer in created] == [202, 202]
    # When they are listed one per page, and the first job's resume token opens a WebSocket
    first = call_http_api("GET", "/jobs", token=user, query={"limit": "1"})
    cursor = first.body["nextCursor"]
    second = call_http_api("GET", "/jobs", token=user, query={"limit": "1", "cursor": cursor})
    resume = created[0].body["resumeToken"]
    connect = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/$connect",
        "headers": {},
        "queryStringParameters": {"token": resume},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT"},
    }
    policy = authorizer.handler(connect, LocalLambdaContext())
    # Then the cursor and the resume token were signed and verified with the stored keys
    assert _signed_with(resume, OLD)
    assert second.status == 200
    listed = {job["jobId"] for page in (first, second) for job in page.body["jobs"]}
    assert listed == {answer.body["job"]["jobId"] for answer in created}
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"]["jobId"] == created[0].body["job"]["jobId"]


# Every other function whose cold start builds a job store (its cursor codec), by entry point.
COLD_STARTS: Final = {
    "functions.ws_handler.handler": "functions.ws_handler",
    "functions.launcher.handler": "functions.launcher",
    "functions.cleanup.handler": "functions.cleanup",
    **{f"functions.runner.{step}": "functions.runner" for step in TASK_STEPS},
}


@pytest.mark.parametrize("entry_point", sorted(COLD_STARTS))
def test_each_function_reads_the_cursor_key_from_secrets_manager_at_cold_start(
    entry_point: str, secrets: Any, arns: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda runs a function's cold start in that function, with its role: the read is its."""
    monkeypatch.setenv(c.ENV_WEBSOCKET_MANAGEMENT_URL, "https://api.example.com/dev")
    cold_start = importlib.import_module(COLD_STARTS[entry_point]).context
    cold_start.cache_clear()
    try:
        # Given the cloud's configuration: the cursor key's ARN, not the key
        with aws_calls.running(entry_point):
            cold_start()
        cold_start.cache_clear()
        # When the secret is gone, the cold start fails loudly instead of signing with nothing
        secrets.delete_secret(SecretId=arns["cursor"], ForceDeleteWithoutRecovery=True)
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            cold_start()
    finally:
        cold_start.cache_clear()
