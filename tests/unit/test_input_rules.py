"""The input rules below the HTTP handler: what DynamoDB can store, the boundary's verdicts, each
job type's own params model with the tenant's scope, strict WebSocket actions, and the local
console's file route."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import ValidationError

from infra.local import console
from shared.api.request_body import refuse_body
from shared.domain.actions import CLIENT_ACTION
from shared.domain.documents import MAX_DEPTH, first_problem, number_problem
from shared.domain.errors import InvalidRequest
from shared.domain.models import JobRequest
from shared.jobs.registry import JobCatalog

JSON = {"content-type": "application/json"}


# -- what DynamoDB can store ------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        0,
        10**38 - 1,
        -(10**38) + 1,
        Decimal("1e-130"),
        Decimal("-1e-130"),
        Decimal("9.9999999999999999999999999999999999999e125"),
        Decimal("1e40"),  # one significant digit: stored as 1E+40
        Decimal("0.000"),
        1.5,
    ],
)
def test_numbers_dynamodb_holds_pass(number: int | float | Decimal) -> None:
    assert number_problem(number) is None


@pytest.mark.parametrize(
    "number",
    [
        10**38,
        -(10**40),
        Decimal("1e126"),
        Decimal("1e-131"),
        Decimal("1" * 39),
        Decimal("100000000000000000000000000000000000000"),  # an integer literal keeps its zeros
        Decimal("NaN"),
        float("inf"),
        1.5e-200,
        pytest.param(10**5000, id="5001 digits"),  # compared, never printed (4300-digit limit)
    ],
)
def test_numbers_dynamodb_refuses_are_named(number: int | float | Decimal) -> None:
    assert number_problem(number) is not None


def test_the_first_problem_says_where_it_is() -> None:
    within: list[Any] = []  # with the object around it: exactly MAX_DEPTH levels
    for _ in range(MAX_DEPTH - 2):
        within = [within]
    cases: list[tuple[Any, tuple[Any, ...], str]] = [
        ({"a": [{"": 1}]}, ("a", 0, ""), "empty_key"),
        ({"a": "\ud800"}, ("a",), "string_unicode"),
        ({"\udc00": 1}, (), "string_unicode"),
        ({"n": Decimal("1e400")}, ("n",), "number_range"),
        ({"deep": [within]}, ("deep", *([0] * (MAX_DEPTH - 1))), "too_deep"),
    ]
    for value, loc, kind in cases:
        found = first_problem(value)
        assert found is not None, value
        assert (found.loc, found.kind) == (loc, kind)
    assert first_problem({"deep": within, "ok": [1, 2.5, "x", None, True, {"k": []}]}) is None


def test_a_job_request_refuses_params_dynamodb_could_not_store() -> None:
    for params in ({"": 1}, {"n": 10**40}, {"s": "\ud800"}, {"f": float("nan")}):
        with pytest.raises(ValidationError) as refused:
            JobRequest(type="demo", params=params)
        assert refused.value.errors()[0]["loc"] == ("params",)


# -- the boundary ----------------------------------------------------------------------------


def _refusal(body: str | None, headers: dict[str, str] = JSON) -> tuple[int, str] | None:
    found = refuse_body(headers, body, base64_encoded=False, max_bytes=16_384)
    return None if found is None else (found.status, found.code)


def test_the_boundary_passes_a_json_object_and_an_empty_body() -> None:
    assert _refusal('{"type": "demo", "params": {"items": 1.5e3}}') is None
    assert _refusal(None, {}) is None
    assert _refusal("", {"content-type": "text/plain"}) is None


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ('{"a": 1}', {"content-type": "text/plain"}, (415, "unsupported_media_type")),
        ('{"a": 1}', {}, (415, "unsupported_media_type")),
        (
            '{"a": 1}',
            {"Content-Type": "application/json;charset=utf-16"},
            (415, "unsupported_media_type"),
        ),
        ('{"a": ', JSON, (400, "malformed_json")),
        ('{"a": NaN}', JSON, (400, "malformed_json")),
        ("[{}]", JSON, (422, "validation_failed")),
        ('{"a": 1e400}', JSON, (422, "validation_failed")),
        ("[" * 5000 + "]" * 5000, JSON, (422, "validation_failed")),
        ("x" * 16_385, JSON, (413, "payload_too_large")),
    ],
)
def test_the_boundary_refuses(
    body: str, headers: dict[str, str], expected: tuple[int, str]
) -> None:
    assert _refusal(body, headers) == expected


def test_a_base64_body_is_checked_after_decoding() -> None:
    found = refuse_body(JSON, "/w==", base64_encoded=True, max_bytes=1024)  # b"\xff"
    assert found is not None
    assert (found.status, found.detail) == (400, "the body is not valid UTF-8 (byte 0)")


# -- job types' own params models, with the tenant's scope ------------------------------------


def _errors(catalog: JobCatalog, body: dict[str, Any], tenant: str = "acme") -> list[Any]:
    try:
        catalog.check(JobRequest.model_validate(body), tenant)
    except InvalidRequest as refused:
        return [(list(error.loc), error.type) for error in refused.errors]
    return []


def test_the_catalog_checks_the_type_and_its_params() -> None:
    catalog = JobCatalog(import_bucket="imports-bucket")
    assert _errors(catalog, {"type": "demo", "params": {"items": 3}}) == []
    assert _errors(catalog, {"type": "nope"}) == [(["body", "type"], "unknown_job_type")]
    assert _errors(catalog, {"type": "demo", "params": {"items": "3"}}) == [
        (["body", "params", "items"], "int_type")
    ]


def test_csv_import_reads_only_the_tenants_prefix_of_the_import_bucket() -> None:
    catalog = JobCatalog(import_bucket="imports-bucket")

    def csv(bucket: str, key: str) -> dict[str, Any]:
        return {"type": "csv_import", "params": {"bucket": bucket, "key": key}}

    assert _errors(catalog, csv("imports-bucket", "imports/acme/a.csv")) == []
    assert _errors(catalog, csv("imports-bucket", "imports/acme/a.csv"), tenant="globex") == [
        (["body", "params", "key"], "import_prefix")
    ]
    assert _errors(catalog, csv("another", "imports/acme/a.csv")) == [
        (["body", "params", "bucket"], "import_bucket")
    ]
    # No import bucket configured: no import at all
    assert _errors(JobCatalog(), csv("imports-bucket", "imports/acme/a.csv")) == [
        (["body", "params", "bucket"], "import_bucket")
    ]


# -- WebSocket actions are strict -------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "subscribe", "jobId": "j1", "since": True},
        {"action": "subscribe", "jobId": "j1", "since": "3"},
        {"action": "subscribe", "jobId": "j1", "since": 1.0},
        {"action": "ack", "jobId": "j1", "seq": True},
        {"action": "ack", "jobId": "j1", "seq": "2"},
    ],
)
def test_websocket_numbers_are_strict(frame: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CLIENT_ACTION.validate_json(json.dumps(frame))


def test_websocket_numbers_are_read_as_sent() -> None:
    subscribe = CLIENT_ACTION.validate_json('{"action": "subscribe", "jobId": "j1", "since": 3}')
    assert getattr(subscribe, "since", None) == 3


# -- the local console's files ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["index.html\x00.js", "\x00", "../../../etc/passwd", "nope.js"])
def test_a_console_path_that_names_no_file_is_404(name: str) -> None:
    request = make_mocked_request("GET", "/console/x", match_info={"name": name})

    answer = asyncio.run(console._static(request))

    assert answer.status == 404
    assert answer.content_type == "application/problem+json"
