"""POST /devices and DELETE /devices/{id} through the HTTP handler, on moto (DynamoDB + SNS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from functions import http_api, http_devices
from infra.local.push_sink import create_platform_applications, platform_environment
from shared import constants as c
from shared.auth_settings import AuthSettings
from shared.domain.auth import Scope
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.models import JobRequest, Platform
from shared.push_wiring import devices, push_notifier
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import HttpApiContext, http_api_context
from tests.integration.http import call_http_api

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_SECRET = "user-secret-for-tests-0123456789abcdef"
IOS_TOKEN = "a1" * 32
NEW_IOS_TOKEN = "b2" * 32
ANDROID_TOKEN = "fcm-token:APA91b" + "x" * 140


@dataclass
class Api:
    context: HttpApiContext
    settings: TetherSettings
    sns: Any
    clock: ManualClock
    dynamodb: DynamoDBClient

    def token(self, tenant: str = "acme", subject: str = "alice") -> str:
        return mint_dev_token(
            USER_SECRET,
            tenant=tenant,
            subject=subject,
            scopes=(Scope.JOBS_READ, Scope.JOBS_WRITE),
            ttl=timedelta(hours=1),
            clock=self.clock,
        )

    def call(
        self, method: str, path: str, *, token: str | None = None, body: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        answer = call_http_api(method, path, token=token or None, body=body)
        return answer.status, answer.headers, answer.body

    def register(self, bearer: str, **body: Any) -> tuple[int, Any]:
        status, _, answer = self.call("POST", "/devices", token=bearer, body=body)
        return status, answer

    def endpoints(self) -> dict[str, Any]:
        return dict(sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].platform_endpoints)


@pytest.fixture
def api(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Api:
    sns = boto3.client("sns", region_name="us-east-1")
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment[c.ENV_CURSOR_SECRET] = "cursor-secret-for-tests-0123456789"
    environment[c.ENV_AUTH_HS256_SECRET] = USER_SECRET
    environment[c.ENV_RESUME_SIGNING_KEY] = "resume-key-for-tests-0123456789abcdef"
    environment.update(platform_environment(create_platform_applications(sns)))
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = TetherSettings()
    built = http_api_context(
        settings, AuthSettings(), client=dynamodb, clock=clock, ids=SequentialIds()
    )
    monkeypatch.setattr(http_api, "context", lambda: built)
    registry = devices(settings, client=dynamodb, sns=sns, clock=clock)
    monkeypatch.setattr(http_devices, "context", lambda: registry)
    return Api(built, settings, sns, clock, dynamodb)


def test_register_then_re_register_is_idempotent(api: Api) -> None:
    # Given alice registers her iPhone's token
    status, first = api.register(api.token(), platform="ios", token=IOS_TOKEN, locale="de-CH")

    # Then 201 with a device id, and neither the token nor the endpoint comes back
    assert status == 201
    assert first["platform"] == "ios"
    assert first["enabled"] is True
    assert first["locale"] == "de-CH"
    assert IOS_TOKEN not in json.dumps(first)
    assert "endpointArn" not in first
    (endpoint,) = api.endpoints().values()
    assert endpoint.application.platform == "APNS"

    # When the app registers the same token again (every launch does)
    api.clock.advance(minutes=5)
    status, again = api.register(api.token(), platform="ios", token=IOS_TOKEN, locale="de-CH")

    # Then 200, the same device and still one endpoint
    assert status == 200
    assert again["deviceId"] == first["deviceId"]
    assert again["createdAt"] == first["createdAt"]
    assert len(api.endpoints()) == 1


def test_a_changed_token_updates_the_same_endpoint(api: Api) -> None:
    # Given a registered device
    _, device = api.register(api.token(), platform="ios", token=IOS_TOKEN)
    (arn,) = api.endpoints()

    # When APNs hands the app a new token and it re-registers under its device id
    status, updated = api.register(
        api.token(), platform="ios", token=NEW_IOS_TOKEN, deviceId=device["deviceId"]
    )

    # Then the same device and endpoint now carry the new token
    assert status == 200
    assert updated["deviceId"] == device["deviceId"]
    assert list(api.endpoints()) == [arn]
    attributes = api.sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes["Token"] == NEW_IOS_TOKEN
    assert attributes["Enabled"] == "true"


def test_a_disabled_endpoint_is_enabled_again_when_its_token_is_registered(api: Api) -> None:
    # Given an Android device whose endpoint SNS disabled (FCM said the token was invalid)
    _, device = api.register(api.token(), platform="android", token=ANDROID_TOKEN)
    (arn,) = api.endpoints()
    api.sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})

    # When the app registers the token again (SNS refuses to create it: other attributes)
    status, again = api.register(api.token(), platform="android", token=ANDROID_TOKEN)

    # Then the endpoint is enabled again, and it is still the one device
    assert status == 200
    assert again["deviceId"] == device["deviceId"]
    attributes = api.sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes["Enabled"] == "true"
    assert len(api.endpoints()) == 1


def test_delete_removes_the_device_and_its_endpoint(api: Api) -> None:
    # Given a registered device
    _, device = api.register(api.token(), platform="ios_sandbox", token=IOS_TOKEN)
    assert len(api.endpoints()) == 1

    # When it is deleted
    status, _, body = api.call("DELETE", f"/devices/{device['deviceId']}", token=api.token())

    # Then 204, the endpoint is gone, and deleting again is a 404 problem
    assert (status, body) == (204, None)
    assert api.endpoints() == {}
    status, headers, problem = api.call(
        "DELETE", f"/devices/{device['deviceId']}", token=api.token()
    )
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["code"] == "device_not_found"


def test_another_tenant_or_user_can_neither_delete_nor_reach_a_device(api: Api) -> None:
    # Given alice's device in tenant acme
    _, device = api.register(api.token(), platform="ios", token=IOS_TOKEN)
    path = f"/devices/{device['deviceId']}"

    # When another tenant's alice and acme's bob try to delete it
    other_tenant = api.call("DELETE", path, token=api.token(tenant="globex"))
    other_user = api.call("DELETE", path, token=api.token(subject="bob"))

    # Then both get 404 (never 403), and the device and its endpoint stay
    assert other_tenant[0] == other_user[0] == 404
    assert len(api.endpoints()) == 1

    # And a job of the other tenant's alice pushes to nobody: her devices are her own
    jobs = api.context.api.jobs
    job = jobs.create_job(JobRequest(type="demo"), tenant_id="globex", owner_id="alice")
    ref = JobRef("globex", job.job_id)
    jobs.start(ref, total=1)
    jobs.complete(ref, {})
    notifier = push_notifier(api.settings, jobs, client=api.dynamodb, sns=api.sns, clock=api.clock)
    assert notifier.notify(ref) == []
    assert all(not endpoint.messages for endpoint in api.endpoints().values())


def test_push_attempts_are_visible_in_the_jobs_state(api: Api) -> None:
    # Given alice's two devices and her finished job, pushed by the Notify step
    token = api.token()
    api.register(token, platform="ios", token=IOS_TOKEN)
    api.register(token, platform="android", token=ANDROID_TOKEN)
    status, _, created = api.call(
        "POST", "/jobs", token=token, body={"type": "demo", "params": {"items": 1}}
    )
    assert status == 202
    job_id = created["job"]["jobId"]
    jobs = api.context.api.jobs
    ref = JobRef("acme", job_id)
    jobs.start(ref, total=1)
    jobs.complete(ref, {})
    notifier = push_notifier(api.settings, jobs, client=api.dynamodb, sns=api.sns, clock=api.clock)
    notifier.notify(ref)

    # When the app syncs the job's state over HTTP
    status, _, state = api.call("GET", f"/jobs/{job_id}", token=token)

    # Then each device's attempt is there, without tokens
    assert status == 200
    assert state["push"] == "if_not_seen"
    assert sorted((a["platform"], a["outcome"]) for a in state["pushAttempts"]) == [
        ("android", "sent"),
        ("ios", "sent"),
    ]
    assert IOS_TOKEN not in json.dumps(state)


def test_bad_registrations_are_problems(api: Api) -> None:
    token = api.token()
    # An unknown platform, a token with spaces, an extra field: 422 naming the field
    for body in (
        {"platform": "windows", "token": IOS_TOKEN},
        {"platform": "ios", "token": "not a token"},
        {"platform": "ios", "token": IOS_TOKEN, "userId": "mallory"},
    ):
        status, problem = api.register(token, **body)
        assert status == 422, body
        assert problem["code"] == "validation_failed"
        assert IOS_TOKEN not in json.dumps(problem)
    # No token: 401; a resume token (one job's reader): 403
    assert api.register("", platform="ios", token=IOS_TOKEN)[0] == 401
    _, _, created = api.call(
        "POST", "/jobs", token=token, body={"type": "demo", "params": {"items": 1}}
    )
    assert api.register(created["resumeToken"], platform="ios", token=IOS_TOKEN)[0] == 403


def test_a_platform_without_an_application_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch, dynamodb: DynamoDBClient
) -> None:
    # Given a deployment configured for iOS only
    only_ios = api.settings.model_copy(update={"push_apns_sandbox_arn": None, "push_fcm_arn": None})
    registry = devices(only_ios, client=dynamodb, sns=api.sns, clock=api.clock)
    monkeypatch.setattr(http_devices, "context", lambda: registry)

    # When an Android device registers / Then 422 push_not_configured, and nothing is created
    status, problem = api.register(api.token(), platform="android", token=ANDROID_TOKEN)
    assert status == 422
    assert problem["code"] == "push_not_configured"
    assert api.endpoints() == {}
    assert only_ios.push_applications.keys() == {Platform.IOS}


def test_openapi_documents_the_device_routes(api: Api) -> None:
    status, _, document = api.call("GET", "/openapi.json")
    assert status == 200
    assert set(document["paths"]["/devices"]) == {"post"}
    assert set(document["paths"]["/devices/{device_id}"]) == {"delete"}


def test_a_token_sns_refuses_is_a_422_that_does_not_quote_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS refusing the token's shape, as it does for a malformed APNs token
    def refuse(**_: Any) -> None:
        error = {
            "Error": {
                "Code": "InvalidParameter",
                "Message": "Invalid parameter: Token Reason: iOS device tokens must be no more "
                "than 400 hexadecimal characters",
            }
        }
        raise ClientError(error, "CreatePlatformEndpoint")  # type: ignore[arg-type]

    monkeypatch.setattr(api.sns, "create_platform_endpoint", refuse)

    # When the device registers / Then 422 invalid_push_token, and nothing is stored
    status, problem = api.register(api.token(), platform="ios", token=IOS_TOKEN)
    assert status == 422
    assert problem["code"] == "invalid_push_token"
    assert IOS_TOKEN not in json.dumps(problem)
    assert api.endpoints() == {}
