"""The authorizer Lambda for WebSocket `$connect` and HTTP API routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws

from functions import authorizer
from infra.local.events import LocalLambdaContext
from shared import constants as c
from shared.auth_settings import AuthSettings
from shared.domain.auth import Principal, Scope
from shared.domain.clock import SystemClock
from shared.services.auth import RESUME_AUDIENCE, mint_dev_token
from shared.wiring import authenticator as build_authenticator
from shared.wiring import load_auth_settings

USER_SECRET = "user-secret-for-tests-0123456789abcdef"
RESUME_KEY = "resume-key-for-tests-0123456789abcdef"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect"


@pytest.fixture(autouse=True)
def _auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c.ENV_AUTH_HS256_SECRET, USER_SECRET)
    monkeypatch.setenv(c.ENV_RESUME_SIGNING_KEY, RESUME_KEY)
    authorizer.authenticator.cache_clear()


def _token(**claims: Any) -> str:
    return mint_dev_token(
        USER_SECRET,
        tenant=claims.get("tenant", "acme"),
        subject="alice",
        scopes=(Scope.JOBS_READ,),
        ttl=timedelta(minutes=5),
        clock=SystemClock(),
    )


def _connect(query: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers or {},
        "queryStringParameters": query,
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT"},
    }
    return authorizer.handler(event, LocalLambdaContext())


def test_websocket_connect_with_a_query_token_is_allowed_with_the_principal() -> None:
    policy = _connect(query={"token": _token()})

    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"]
    principal = Principal.from_context(policy["context"])
    assert (principal.tenant_id, principal.subject) == ("acme", "alice")
    assert principal.scopes == {Scope.JOBS_READ}
    assert principal.job_id is None
    assert _token() not in str(policy)


def test_websocket_connect_with_the_subprotocol_token() -> None:
    policy = _connect(headers={"Sec-WebSocket-Protocol": f"tether.v2, bearer.{_token()}"})
    assert policy["context"]["tenantId"] == "acme"


def test_websocket_connect_accepts_a_resume_token_pinned_to_its_job() -> None:
    resume = authorizer.authenticator().resume_tokens.mint(
        tenant_id="acme", subject="alice", job_id="j_1"
    )
    principal = Principal.from_context(_connect(query={"token": resume})["context"])
    assert principal.job_id == "j_1"
    assert principal.is_resume


@pytest.mark.parametrize("query", [None, {"token": ""}, {"token": "garbage"}, {"token": "a.b.c"}])
def test_websocket_connect_without_a_good_token_is_401(query: dict[str, str] | None) -> None:
    with pytest.raises(PermissionError, match=r"^Unauthorized$"):
        _connect(query=query)


def test_http_authorizer_simple_response() -> None:
    def call(authorization: str | None) -> Any:
        headers = {"authorization": authorization} if authorization else {}
        event = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/jobs",
            "identitySource": [authorization or ""],
            "headers": headers,
            "requestContext": {"http": {"method": "GET", "path": "/jobs"}},
        }
        return authorizer.handler(event, LocalLambdaContext())

    allowed = call(f"Bearer {_token()}")
    assert allowed["isAuthorized"] is True
    assert allowed["context"]["tenantId"] == "acme"
    assert call("Bearer nope") == {"isAuthorized": False}
    assert call(None)["isAuthorized"] is False


def test_the_resume_key_is_read_from_secrets_manager_when_only_its_arn_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="tether/resume-key", SecretString="k" * 48
        )["ARN"]
        monkeypatch.delenv(c.ENV_RESUME_SIGNING_KEY)
        monkeypatch.setenv(c.ENV_RESUME_SIGNING_KEY_SECRET_ARN, arn)

        settings = load_auth_settings(AuthSettings())
        token = build_authenticator(settings, SystemClock()).resume_tokens.mint(
            tenant_id="acme", subject="alice", job_id="j1"
        )

    assert settings.resume_signing_key is None  # read by the authenticator, as it rotates
    claims = jwt.decode(token, "k" * 48, algorithms=["HS256"], audience=RESUME_AUDIENCE)
    assert claims["job"] == "j1"
