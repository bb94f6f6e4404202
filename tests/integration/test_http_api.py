"""The HTTP API handler end to end on moto: routes, auth, tenancy, problems, limits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from functions import http_api
from shared import constants as c
from shared.auth_settings import AuthSettings
from shared.domain.auth import Scope
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.models import ProgressDelta
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import HttpApiContext, http_api_context
from tests.integration.http import call_http_api

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_SECRET = "user-secret-for-tests-0123456789abcdef"
RESUME_KEY = "resume-key-for-tests-0123456789abcdef"
ALL = (Scope.JOBS_READ, Scope.JOBS_WRITE)
IMPORT_BUCKET = "tether-imports"
DEMO: dict[str, Any] = {"type": "demo", "params": {"items": 1}}


@dataclass
class Api:
    context: HttpApiContext
    clock: ManualClock

    def token(self, tenant: str = "acme", subject: str = "alice", scopes: Any = ALL) -> str:
        return mint_dev_token(
            USER_SECRET,
            tenant=tenant,
            subject=subject,
            scopes=scopes,
            ttl=timedelta(hours=1),
            clock=self.clock,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        answer = call_http_api(method, path, token=token, body=body, query=query, headers=headers)
        return answer.status, answer.headers, answer.body


@pytest.fixture
def api(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Api:
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment[c.ENV_CURSOR_SECRET] = "cursor-secret-for-tests-0123456789"
    environment[c.ENV_WRITE_RATE_PER_MINUTE] = "20"
    environment[c.ENV_AUTH_HS256_SECRET] = USER_SECRET
    environment[c.ENV_RESUME_SIGNING_KEY] = RESUME_KEY
    environment[c.ENV_IMPORT_BUCKET] = IMPORT_BUCKET
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    built = http_api_context(
        TetherSettings(), AuthSettings(), client=dynamodb, clock=clock, ids=SequentialIds()
    )
    monkeypatch.setattr(http_api, "context", lambda: built)
    return Api(built, clock)


def _create(api: Api, token: str, **body: Any) -> dict[str, Any]:
    status, _, created = api.call("POST", "/jobs", token=token, body={**DEMO, **body})
    assert status == 202, created
    return created  # type: ignore[no-any-return]


def test_create_then_sync_state_with_the_resume_token(api: Api) -> None:
    # Given a user creating a job
    status, headers, created = api.call(
        "POST", "/jobs", token=api.token(), body={"type": "demo", "params": {"items": 5}}
    )

    # Then 202 with the job and a resume token scoped to it
    assert status == 202
    job = created["job"]
    assert (job["status"], job["seq"], job["tenantId"], job["ownerId"]) == (
        "queued",
        1,
        "acme",
        "alice",
    )
    assert "version" not in job  # store bookkeeping stays inside
    assert headers["Location"] == f"/jobs/{job['jobId']}"
    resume = created["resumeToken"]

    # When the app comes back with only its resume token
    status, _, state = api.call("GET", f"/jobs/{job['jobId']}", token=resume)
    assert status == 200
    assert state["jobId"] == job["jobId"]
    status, _, log = api.call("GET", f"/jobs/{job['jobId']}/messages", token=resume)
    assert status == 200
    assert [m["seq"] for m in log["messages"]] == [1]
    assert (log["seq"], log["epoch"]) == (1, job["epoch"])

    # But the resume token can do nothing else
    assert api.call("POST", f"/jobs/{job['jobId']}/cancel", token=resume)[0] == 403
    assert api.call("GET", "/jobs", token=resume)[0] == 403
    other = _create(api, api.token())["job"]["jobId"]
    assert api.call("GET", f"/jobs/{other}", token=resume)[0] == 404


def test_another_tenant_gets_404_never_403(api: Api) -> None:
    job_id = _create(api, api.token())["job"]["jobId"]
    intruder = api.token(tenant="globex", subject="mallory")
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/messages"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("DELETE", f"/jobs/{job_id}"),
    ]:
        status, headers, body = api.call(method, path, token=intruder)
        assert status == 404, (method, path, body)
        assert headers["Content-Type"] == "application/problem+json"
        assert body["code"] == "job_not_found"
    assert api.call("GET", "/jobs", token=intruder)[2]["jobs"] == []


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, 401),
        ("not-a-jwt", 401),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", 401),
    ],
)
def test_bad_credentials_are_401_with_a_challenge(
    api: Api, token: str | None, expected: int
) -> None:
    status, headers, body = api.call("GET", "/jobs", token=token)
    assert status == expected
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["code"] == "unauthenticated"
    assert token is None or token not in json.dumps(body)


def test_missing_scope_is_403(api: Api) -> None:
    reader = api.token(scopes=(Scope.JOBS_READ,))
    status, _, body = api.call("POST", "/jobs", token=reader, body=DEMO)
    assert (status, body["code"]) == (403, "forbidden")
    assert api.call("GET", "/jobs", token=reader)[0] == 200


def test_invalid_body_names_the_field_as_problem_json(api: Api) -> None:
    status, headers, body = api.call(
        "POST", "/jobs", token=api.token(), body={"type": "demo", "priority": "urgent"}
    )
    assert status == 422
    assert headers["Content-Type"] == "application/problem+json"
    assert body["code"] == "validation_failed"
    assert any(error["loc"][-1] == "priority" for error in body["errors"])


def test_idempotency_key_returns_the_same_job_and_refuses_a_different_body(api: Api) -> None:
    token = api.token()
    key = {"Idempotency-Key": "create-42"}
    _, _, first = api.call("POST", "/jobs", token=token, body=DEMO, headers=key)
    _, _, again = api.call("POST", "/jobs", token=token, body=DEMO, headers=key)
    assert first["job"]["jobId"] == again["job"]["jobId"]
    assert api.call("GET", "/jobs", token=token)[2]["jobs"].__len__() == 1

    status, _, body = api.call(
        "POST", "/jobs", token=token, body={**DEMO, "priority": "high"}, headers=key
    )
    assert (status, body["code"]) == (422, "idempotency_key_reused")
    # the same key in another tenant is another request altogether
    other = api.call("POST", "/jobs", token=api.token(tenant="globex"), body=DEMO, headers=key)
    assert other[0] == 202
    assert other[2]["job"]["jobId"] != first["job"]["jobId"]


def test_writes_are_rate_limited_per_tenant_with_retry_after(api: Api) -> None:
    token = api.token()
    statuses = [api.call("POST", "/jobs", token=token, body=DEMO)[0] for _ in range(21)]
    assert statuses[:20] == [202] * 20
    status, headers, body = api.call("POST", "/jobs", token=token, body=DEMO)
    assert (status, body["code"]) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 60
    # another tenant is not affected, and reads are never limited
    assert api.call("POST", "/jobs", token=api.token(tenant="globex"), body=DEMO)[0] == 202
    assert api.call("GET", "/jobs", token=token)[0] == 200
    # the next window opens again
    api.clock.advance(seconds=61)
    assert api.call("POST", "/jobs", token=token, body=DEMO)[0] == 202


def test_oversized_body_is_413(api: Api) -> None:
    status, _, body = api.call(
        "POST", "/jobs", token=api.token(), body={"type": "demo", "params": {"x": "y" * 70_000}}
    )
    assert (status, body["code"]) == (413, "payload_too_large")


def test_control_routes_are_idempotent_and_409_when_forbidden(api: Api) -> None:
    token = api.token()
    job_id = _create(api, token)["job"]["jobId"]
    assert api.call("POST", f"/jobs/{job_id}/pause", token=token)[0] == 409  # queued
    api.context.api.jobs.start(JobRef("acme", job_id), total=2)

    assert api.call("POST", f"/jobs/{job_id}/pause", token=token)[2]["pauseRequested"] is True
    assert api.call("POST", f"/jobs/{job_id}/pause", token=token)[0] == 200
    assert api.call("POST", f"/jobs/{job_id}/resume", token=token)[2]["pauseRequested"] is False
    first = api.call("POST", f"/jobs/{job_id}/cancel", token=token)
    second = api.call("POST", f"/jobs/{job_id}/cancel", token=token)
    assert first[2] == second[2]
    assert first[2]["cancelRequested"] is True
    assert api.call("DELETE", f"/jobs/{job_id}", token=token)[0] == 409  # still running

    api.context.api.jobs.finish_cancelled(JobRef("acme", job_id))
    status, _, _ = api.call("DELETE", f"/jobs/{job_id}", token=token)
    assert status == 204
    assert api.call("GET", f"/jobs/{job_id}", token=token)[0] == 404


def test_messages_after_expiry_is_410_with_the_state(api: Api) -> None:
    token = api.token()
    job_id = _create(api, token)["job"]["jobId"]
    ref = JobRef("acme", job_id)
    api.context.api.jobs.start(ref, total=2)
    api.clock.advance(hours=25)
    api.context.api.jobs.report_progress(ref, ProgressDelta(succeeded=1))
    token = api.token()  # the first one expired an hour after it was minted

    status, _, body = api.call("GET", f"/jobs/{job_id}/messages", token=token, query={"after": "0"})

    assert (status, body["code"]) == (410, "messages_expired")
    assert body["job"]["jobId"] == job_id
    assert body["job"]["seq"] == 3
    ok = api.call("GET", f"/jobs/{job_id}/messages", token=token, query={"after": "2"})
    assert [m["seq"] for m in ok[2]["messages"]] == [3]


def test_list_filters_and_pages(api: Api) -> None:
    token = api.token()
    for _ in range(3):
        api.clock.advance(seconds=1)
        _create(api, token)
    _, _, first = api.call("GET", "/jobs", token=token, query={"limit": "2"})
    assert len(first["jobs"]) == 2
    _, _, second = api.call(
        "GET", "/jobs", token=token, query={"limit": "2", "cursor": first["nextCursor"]}
    )
    assert len(second["jobs"]) == 1
    assert api.call("GET", "/jobs", token=token, query={"status": "running"})[2]["jobs"] == []
    assert api.call("GET", "/jobs", token=token, query={"status": "nope"})[0] == 422
    bad = api.call("GET", "/jobs", token=token, query={"cursor": "forged.cursor"})
    assert (bad[0], bad[2]["code"]) == (400, "invalid_cursor")


def test_a_cursor_that_is_not_base64url_is_refused_as_the_document_says(api: Api) -> None:
    # The document says what a cursor looks like (two base64url parts), so a client's
    # generated or mangled one is refused as not matching it, naming the parameter.
    status, _, problem = api.call("GET", "/jobs", token=api.token(), query={"cursor": "a b\u00e9"})

    assert (status, problem["code"]) == (422, "validation_failed")
    assert problem["errors"][0]["loc"] == ["query", "cursor"]


def test_openapi_document_describes_the_routes(api: Api) -> None:
    status, _, document = api.call("GET", "/openapi.json")
    assert status == 200
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/messages"} <= set(document["paths"])
    assert "JobCreated" in json.dumps(document)
    assert api.call("GET", "/nowhere", token=api.token())[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/jobs", "GET, POST"),
        ("PUT", "/jobs/j-1", "DELETE, GET"),
        ("TRACE", "/devices", "POST"),
        ("GET", "/jobs/j-1/cancel", "POST"),
    ],
)
def test_a_method_the_path_does_not_take_is_405_naming_those_it_does(
    api: Api, method: str, path: str, allowed: str
) -> None:
    status, headers, problem = api.call(method, path, token=api.token())

    assert (status, headers["Allow"], problem["code"]) == (405, allowed, "method_not_allowed")
    assert headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "expected_loc"),
    [
        (json.dumps({"type": "demo", "priority": 3}), "priority"),
        (json.dumps({"type": "demo", "params": "x"}), "params"),
        (json.dumps({"type": "demo", "bogus": True}), "bogus"),
        (json.dumps({"params": {}}), "type"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(api: Api, body: str, expected_loc: str | None) -> None:
    status, headers, problem = api.call("POST", "/jobs", token=api.token(), body=body)
    assert status == 422, problem
    assert headers["Content-Type"] == "application/problem+json"
    if expected_loc is not None:
        assert any(expected_loc in error["loc"] for error in problem["errors"]), problem


def test_missing_body_is_422(api: Api) -> None:
    status, _, problem = api.call("POST", "/jobs", token=api.token())
    assert status == 422
    assert problem["code"] == "validation_failed"


def test_cancel_of_a_completed_job_is_409(api: Api) -> None:
    token = api.token()
    job_id = _create(api, token)["job"]["jobId"]
    ref = JobRef("acme", job_id)
    api.context.api.jobs.start(ref, total=1)
    api.context.api.jobs.complete(ref, {"ok": True})
    status, _, problem = api.call("POST", f"/jobs/{job_id}/cancel", token=token)
    assert (status, problem["code"]) == (409, "illegal_transition")
    assert "completed" in problem["detail"]


def test_pause_and_resume_of_another_tenants_job_are_404(api: Api) -> None:
    job_id = _create(api, api.token())["job"]["jobId"]
    intruder = api.token(tenant="globex")
    for action in ("pause", "resume"):
        assert api.call("POST", f"/jobs/{job_id}/{action}", token=intruder)[0] == 404


def test_expired_wrong_signature_and_foreign_issuer_tokens_are_401(api: Api) -> None:
    expired = api.token()
    api.clock.advance(hours=2)
    forged = mint_dev_token(
        "another-secret-entirely-0123456789abc",
        tenant="acme",
        subject="alice",
        scopes=ALL,
        ttl=timedelta(hours=1),
        clock=api.clock,
    )
    foreign = mint_dev_token(
        USER_SECRET,
        tenant="acme",
        subject="alice",
        scopes=ALL,
        ttl=timedelta(hours=1),
        clock=api.clock,
        issuer="someone-else",
    )
    for token in (expired, forged, foreign):
        status, _, problem = api.call("GET", "/jobs", token=token)
        assert (status, problem["code"]) == (401, "unauthenticated")
