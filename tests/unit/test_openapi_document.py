"""The HTTP API's OpenAPI document, walked without any AWS: every route is in it, and every
operation declares what it can answer (errors as problem+json, 204 without a body) and the
bearer scheme it needs. tests/e2e/test_openapi_conformance.py checks the answers themselves.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from functions import http_api
from functions.http_api import app
from shared.api.openapi import BEARER, EVERY_ROUTE
from shared.api.problems import PROBLEM_CONTENT_TYPE, Problem

DOCUMENT: Final[dict[str, Any]] = json.loads(app.get_openapi_json_schema())
OPERATIONS: Final = [
    (f"{method.upper()} {path}", operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
WRITES: Final = {"POST", "DELETE"}
PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}


def _ids(operations: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in operations]


def test_every_route_of_the_resolver_is_in_the_document_and_nothing_else() -> None:
    routes = [*app._static_routes, *app._dynamic_routes]
    documented = {
        f"{route.method} {route.openapi_path}" for route in routes if route.include_in_schema
    }

    assert documented == set(_ids(OPERATIONS))
    assert {f"{route.method} {route.openapi_path}" for route in routes} - documented == {
        "GET /openapi.json",
        "GET /docs",
    }


def test_the_bearer_jwt_scheme_is_declared() -> None:
    assert DOCUMENT["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": DOCUMENT["components"]["securitySchemes"][BEARER]["description"],
    }


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=_ids(OPERATIONS))
def test_each_operation_needs_the_bearer_token(name: str, operation: dict[str, Any]) -> None:
    assert operation["security"] == [{BEARER: []}]


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=_ids(OPERATIONS))
def test_each_operation_declares_its_errors_as_problem_json(
    name: str, operation: dict[str, Any]
) -> None:
    method, path = name.split(" ", 1)
    responses = operation["responses"]
    expected = {int(status) for status in EVERY_ROUTE}
    if "{" in path:
        expected.add(404)  # an id that is not the caller's
    if method in WRITES:
        expected.add(429)  # the tenant's write rate
    declared_errors = {int(status) for status in responses if int(status) >= 400}

    assert expected <= declared_errors, name
    for status in declared_errors:
        content = responses[str(status)]["content"]
        assert content == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}, (name, status)
    assert "WWW-Authenticate" in responses["401"]["headers"]
    if 429 in declared_errors:
        assert "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("POST /jobs", {409}),
        ("GET /jobs/{job_id}/messages", {410}),
        ("POST /jobs/{job_id}/cancel", {409}),
        ("DELETE /jobs/{job_id}", {409}),
    ],
)
def test_operations_declare_their_own_conflicts_and_expiry(name: str, statuses: set[int]) -> None:
    declared = {int(status) for status in dict(OPERATIONS)[name]["responses"]}

    assert statuses <= declared


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=_ids(OPERATIONS))
def test_each_success_is_json_and_a_204_has_no_body(name: str, operation: dict[str, Any]) -> None:
    successes = {int(s): r for s, r in operation["responses"].items() if int(s) < 300}

    assert successes, name
    for status, response in successes.items():
        if status == 204:
            assert not response.get("content"), name
        else:
            assert set(response["content"]) == {"application/json"}, name


def test_the_problem_schema_names_every_member_a_problem_carries() -> None:
    schema = DOCUMENT["components"]["schemas"]["Problem"]

    assert set(schema["required"]) == {"type", "title", "status", "detail", "code"}
    assert set(schema["properties"]) == {*schema["required"], "errors", "job"}
    assert schema["additionalProperties"] is False
    assert set(Problem.model_fields) == set(schema["properties"])


def test_the_links_from_a_created_job_lead_to_its_routes() -> None:
    links = dict(OPERATIONS)["POST /jobs"]["responses"]["202"]["links"]
    targets = {
        link["operationRef"].removeprefix("#/paths/").replace("~1", "/") for link in links.values()
    }

    assert targets == {
        "/jobs/{job_id}/get",
        "/jobs/{job_id}/messages/get",
        "/jobs/{job_id}/cancel/post",
        "/jobs/{job_id}/pause/post",
        "/jobs/{job_id}/resume/post",
        "/jobs/{job_id}/delete",
    }
    assert {json.dumps(link["parameters"]) for link in links.values()} == {
        json.dumps({"job_id": "$response.body#/job/jobId"})
    }


def test_the_document_is_generated_once_per_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cold start (nothing cached) and a generator that counts its calls
    http_api._document.cache_clear()
    calls: list[int] = []

    def generate(**_: Any) -> str:
        calls.append(1)
        return "{}"

    monkeypatch.setattr(app, "get_openapi_json_schema", generate)

    # When the document is asked for three times
    bodies = [http_api.openapi_document().body for _ in range(3)]

    # Then it was generated once and served the same each time
    http_api._document.cache_clear()
    assert (bodies, len(calls)) == (["{}"] * 3, 1)
