"""Hostile input at the HTTP boundary: every body the API cannot take is a 4xx problem+json
that names what is wrong, and nothing is stored: no job, no run slot, no execution."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions import http_schedules
from shared.adapters.dynamo_limits import DynamoRunSlots
from shared.domain.schedules import ScheduleRecord, ScheduleRequest
from shared.services.ports import JobFilter
from tests.integration.http import HttpAnswer, call_http_api
from tests.integration.scheduling import IMPORT_BUCKET, World

DEMO: dict[str, Any] = {"type": "demo", "params": {"items": 3}}


def _post(
    world: World,
    body: str | bytes | dict[str, Any],
    *,
    path: str = "/jobs",
    tenant: str = "acme",
    headers: dict[str, str] | None = None,
) -> HttpAnswer:
    raw = json.dumps(body) if isinstance(body, dict) else body
    return call_http_api("POST", path, token=world.token(tenant), body=raw, headers=headers)


def _nothing_stored(world: World, tenant: str = "acme") -> None:
    assert world.jobs.list(tenant, JobFilter()).jobs == []
    slots = DynamoRunSlots(world.client, world.settings.limits_table).holders()
    assert slots.get(tenant, set()) == set()
    assert world.executions.started == []
    status, listing = world.call("GET", "/jobs", tenant=tenant)
    assert (status, listing["jobs"]) == (200, [])


def _refused(answer: HttpAnswer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert (answer.body["status"], answer.body["code"]) == (status, code)
    body: dict[str, Any] = answer.body
    return body


def _locs(problem: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in problem["errors"]]


# -- what DynamoDB cannot store (issue 17 item 2, 4) ------------------------------------------


def test_an_empty_key_in_params_is_422_and_poisons_nothing(world: World) -> None:
    # When a job names an empty key (DynamoDB refuses the write; moto would mangle the item)
    problem = _refused(_post(world, {"type": "demo", "params": {"": 1}}), 422, "validation_failed")

    # Then it is refused naming the key, and the tenant's jobs and slots are untouched
    assert _locs(problem) == [["body", "params", ""]]
    assert problem["errors"][0]["type"] == "empty_key"
    _nothing_stored(world)
    # and the tenant can still create and list jobs
    assert _post(world, DEMO).status == 202
    assert len(world.call("GET", "/jobs")[1]["jobs"]) == 1


NUMBERS_DYNAMODB_REFUSES = {
    str(10**38): "has 39 significant digits",
    str(10**40): "has 41 significant digits",
    str(-(10**40)): "has 41 significant digits",
    "1" + "0" * 400: "has 401 significant digits",
    "9" * 5000: "has 5000 significant digits",
    "0." + "1" * 39: "has 39 significant digits",
    "1e400": "is too large",
    "-1e400": "is too large",
    "1e126": "is too large",
    "1.5e-200": "is too small",
}


def test_numbers_dynamodb_cannot_hold_are_422_naming_the_field(world: World) -> None:
    for number, reason in NUMBERS_DYNAMODB_REFUSES.items():
        body = '{"type": "demo", "params": {"items": 1, "weight": ' + number + "}}"

        problem = _refused(_post(world, body), 422, "validation_failed")

        assert _locs(problem) == [["body", "params", "weight"]], number[:20]
        assert problem["errors"][0]["type"] == "number_range"
        assert problem["detail"].startswith(f"body.params.weight: {reason}"), problem["detail"]
    _nothing_stored(world)


def test_nan_and_infinity_are_not_json_400(world: World) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = '{"type": "demo", "params": {"items": 1, "weight": ' + literal + "}}"

        problem = _refused(_post(world, body), 400, "malformed_json")

        assert problem["detail"].startswith("the body is not valid JSON"), problem
    _nothing_stored(world)


def test_a_lone_surrogate_is_422_and_creates_no_job(world: World) -> None:
    # "\ud800" is a valid JSON escape for a string UTF-8 (and DynamoDB) cannot hold
    body = '{"type": "demo", "params": {"items": 1, "name": "\\ud800"}}'
    key = {"Idempotency-Key": "k-1"}

    problem = _refused(_post(world, body, headers=key), 422, "validation_failed")

    assert _locs(problem) == [["body", "params", "name"]]
    assert problem["errors"][0]["type"] == "string_unicode"
    _nothing_stored(world)
    # The key was not spent on the refused body
    assert _post(world, DEMO, headers=key).status == 202


def test_a_body_that_is_not_utf8_is_400(world: World) -> None:
    body = b'{"type": "demo", "params": {"items": 1, "name": "\xff\xfe"}}'

    problem = _refused(_post(world, body), 400, "malformed_json")

    assert problem["detail"] == f"the body is not valid UTF-8 (byte {body.index(0xFF)})"
    _nothing_stored(world)


def test_json_nested_too_deep_is_422(world: World) -> None:
    for depth in (31, 10_000):  # 31 inside `params` (depth 2): one level past the limit
        nested = "[" * depth + "]" * depth
        body = '{"type": "demo", "params": {"items": 1, "deep": ' + nested + "}}"

        problem = _refused(_post(world, body), 422, "validation_failed")

        assert problem["errors"][0]["type"] == "too_deep"
        assert "nested deeper than 32 levels" in problem["detail"]
    _nothing_stored(world)


def test_a_body_that_is_not_application_json_is_415(world: World) -> None:
    for content_type in (
        "text/plain",
        "application/octet-stream",
        "application/json; charset=latin-1",
        "",
    ):
        answer = _post(world, DEMO, headers={"Content-Type": content_type})

        problem = _refused(answer, 415, "unsupported_media_type")

        assert (content_type or "untyped") in problem["detail"]
    _nothing_stored(world)
    # The media type is case-insensitive, and UTF-8 may be said
    answer = _post(world, DEMO, headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert answer.status == 202, answer.body


def test_the_same_rules_hold_on_every_route_with_a_body(world: World) -> None:
    schedule = {"name": "n", "expression": "rate(1 hour)", "job": DEMO, "x": {"": 1}}
    assert _post(world, schedule, path="/schedules").status == 422
    assert _post(world, b"\xff", path="/devices").status == 400
    answer = _post(world, "{}", path="/schedules", headers={"Content-Type": "text/plain"})
    assert answer.status == 415


# -- accepted but should have been refused (issue 17 item 5) ----------------------------------


def test_a_body_that_is_not_a_json_object_is_422(world: World) -> None:
    for body in ("[" + json.dumps(DEMO) + ", {}]", "3", '"demo"', "null"):
        problem = _refused(_post(world, body), 422, "validation_failed")

        assert _locs(problem) == [["body"]]
        assert problem["errors"][0]["type"] == "object_type"
    _nothing_stored(world)


def test_an_array_body_creates_no_schedule(world: World) -> None:
    schedule = {"name": "n", "expression": "rate(1 hour)", "job": DEMO}
    answer = _post(world, json.dumps([schedule, schedule]), path="/schedules")
    assert _refused(answer, 422, "validation_failed")["errors"][0]["type"] == "object_type"
    assert world.call("GET", "/schedules")[1]["schedules"] == []


def test_an_unknown_job_type_is_422_naming_type_and_the_known_types(world: World) -> None:
    problem = _refused(_post(world, {"type": "teleport", "params": {}}), 422, "validation_failed")

    assert _locs(problem) == [["body", "type"]]
    assert problem["errors"][0]["message"] == (
        "unknown job type 'teleport'; the known types are: csv_import, demo"
    )
    _nothing_stored(world)


DEMO_PARAMS_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"items": -1}, "items"),
    ({"items": 10_000_001}, "items"),
    ({"items": 10**30}, "items"),
    ({}, "items"),
    ({"items": 1, "delayMs": 10**6}, "delayMs"),
    ({"items": "3"}, "items"),
    ({"items": True}, "items"),
    ({"items": 3.0}, "items"),
    ({"items": 1, "transientFailures": ["1"]}, "transientFailures"),
    ({"items": 1, "surprise": 1}, "surprise"),
]


def test_params_the_job_type_refuses_are_422_naming_the_field(world: World) -> None:
    for params, field in DEMO_PARAMS_REFUSED:
        body = {"type": "demo", "params": params}

        problem = _refused(_post(world, body), 422, "validation_failed")

        assert [loc[:3] for loc in _locs(problem)] == [["body", "params", field]], params
        assert f"body.params.{field}" in problem["detail"]
    _nothing_stored(world)


def test_request_numbers_are_strict(world: World) -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"retry": {"maxRetries": "3"}}, ["body", "retry", "maxRetries"]),
        ({"retry": {"maxRetries": True}}, ["body", "retry", "maxRetries"]),
        ({"timeoutSeconds": "60"}, ["body", "timeoutSeconds"]),
        ({"retry": {"backoffMultiplier": True}}, ["body", "retry", "backoffMultiplier"]),
    ]
    for extra, loc in cases:
        problem = _refused(_post(world, {**DEMO, **extra}), 422, "validation_failed")
        assert _locs(problem) == [loc], extra
    _nothing_stored(world)


def test_a_schedule_is_refused_for_the_params_its_job_could_not_take(world: World) -> None:
    schedule = {"name": "n", "expression": "rate(1 hour)", "job": {"type": "demo"}}

    problem = _refused(_post(world, schedule, path="/schedules"), 422, "validation_failed")

    assert _locs(problem) == [["body", "job", "params", "items"]]
    assert world.call("GET", "/schedules")[1]["schedules"] == []
    assert world.aws_schedule_names() == set()


# -- csv_import reads only its own tenant's uploads (issue 17 item 3) ---------------------------


@pytest.fixture
def uploads(world: World) -> Any:
    """The import bucket on moto's S3, with tenant acme's contacts uploaded."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=IMPORT_BUCKET)
    s3.put_object(Bucket=IMPORT_BUCKET, Key="imports/acme/contacts.csv", Body=b"email,name\n")
    return s3


def _csv(bucket: str, key: str) -> dict[str, Any]:
    return {"type": "csv_import", "params": {"bucket": bucket, "key": key}}


def test_another_tenants_key_is_422_whether_or_not_it_exists(world: World, uploads: Any) -> None:
    # When tenant globex names acme's upload, and a key of acme's that does not exist
    existing = _post(world, _csv(IMPORT_BUCKET, "imports/acme/contacts.csv"), tenant="globex")
    missing = _post(world, _csv(IMPORT_BUCKET, "imports/acme/missing.csv"), tenant="globex")

    # Then both are refused naming the key, in bodies that tell the two apart in no way
    first = _refused(existing, 422, "validation_failed")
    second = _refused(missing, 422, "validation_failed")
    assert _locs(first) == [["body", "params", "key"]]
    assert first["detail"] == "body.params.key: must name an object under imports/globex/"
    assert first == second
    _nothing_stored(world, "globex")
    # While acme may import its own upload
    assert _post(world, _csv(IMPORT_BUCKET, "imports/acme/contacts.csv")).status == 202


def test_only_the_callers_prefix_of_the_import_bucket_is_readable(world: World) -> None:
    for bucket, key, field in [
        ("other-bucket", "imports/acme/contacts.csv", "bucket"),
        (IMPORT_BUCKET, "contacts.csv", "key"),
        (IMPORT_BUCKET, "imports/acme/", "key"),
        (IMPORT_BUCKET, "imports/acme/../globex/contacts.csv", "key"),
        (IMPORT_BUCKET, "imports/acmeco/contacts.csv", "key"),
    ]:
        problem = _refused(_post(world, _csv(bucket, key)), 422, "validation_failed")
        assert _locs(problem) == [["body", "params", field]], key
    _nothing_stored(world)


def test_a_schedule_cannot_import_another_tenants_upload(world: World) -> None:
    job = _csv(IMPORT_BUCKET, "imports/acme/contacts.csv")
    schedule = {"name": "n", "expression": "rate(1 hour)", "job": job}

    answer = _post(world, schedule, path="/schedules", tenant="globex")

    problem = _refused(answer, 422, "validation_failed")

    assert _locs(problem) == [["body", "job", "params", "key"]]
    assert world.aws_schedule_names() == set()


def test_a_stored_schedule_reading_another_tenants_upload_starts_no_job(world: World) -> None:
    # Given a schedule stored before the rule existed, importing acme's upload for globex
    request = ScheduleRequest.model_validate(
        {
            "name": "n",
            "expression": "rate(1 hour)",
            "job": _csv(IMPORT_BUCKET, "imports/acme/contacts.csv"),
        }
    )
    now = world.clock.now()
    record = ScheduleRecord.model_validate(
        {
            **request.model_dump(),
            "schedule_id": "s_old",
            "tenant_id": "globex",
            "owner_id": "mallory",
            "state": "enabled",
            "created_at": now,
            "updated_at": now,
        }
    )
    http_schedules.context().store.insert(record)

    # When Scheduler fires it, and when its owner runs it now
    fired = world.launch({"kind": "schedule", "tenantId": "globex", "scheduleId": "s_old"})
    status, problem = world.call("POST", "/schedules/s_old/run", tenant="globex")

    # Then no job starts either way
    assert fired == {"launched": False, "reason": "validation_failed"}
    assert (status, problem["code"]) == (422, "validation_failed")
    assert problem["errors"][0]["loc"] == ["job", "params", "key"]
    _nothing_stored(world, "globex")


def test_an_upload_event_from_another_bucket_starts_no_job(world: World) -> None:
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::someone-elses"],
        "detail": {
            "version": "0",
            "bucket": {"name": "someone-elses"},
            "object": {"key": "imports/acme/x.csv", "size": 1, "etag": "e", "sequencer": "1"},
            "request-id": "r",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }

    assert world.launch(event) == {"launched": False, "reason": "validation_failed"}
    _nothing_stored(world)


# -- a stored item that is not a job never stops a reader (issue 17 item 2) --------------------


def _store_unreadable_job(world: World, tenant: str, job_id: str, like: str) -> None:
    """A running copy of job `like` under `job_id` whose counters are not counters: what a
    mangled write leaves behind (moto stores `{"": 1}` as a map it cannot read back)."""
    table = world.tables["jobs"]
    key = {"tenantId": {"S": tenant}, "jobId": {"S": like}}
    item = world.client.get_item(TableName=table, Key=key)["Item"]
    item.update(
        jobId={"S": job_id},
        status={"S": "running"},
        tenantStatus={"S": f"{tenant}#running"},
        counters={"S": "mangled"},
    )
    world.client.put_item(TableName=table, Item=item)


def test_an_unreadable_item_is_skipped_by_the_listing_logged_and_counted(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a tenant with a good job and an item that does not parse as a job
    good = _post(world, DEMO).body["job"]["jobId"]
    _store_unreadable_job(world, "acme", "j_bad", like=good)
    capsys.readouterr()

    # When the tenant lists its jobs, and filters by status
    status, listing = world.call("GET", "/jobs")
    running = world.call("GET", "/jobs?status=running")

    # Then the listing answers with the good job only (none is running)
    assert (status, [job["jobId"] for job in listing["jobs"]]) == (200, [good])
    assert (running[0], running[1]["jobs"]) == (200, [])
    # and says which item it skipped (its key), and counts it as a metric
    skipped = [r for r in caplog.records if r.getMessage() == "unreadable job item skipped"]
    keys = [(getattr(r, "tenantId", None), getattr(r, "jobId", None)) for r in skipped]
    assert keys == [("acme", "j_bad")] * 2
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    counted = [line["UnreadableJobItems"] for line in metrics if "UnreadableJobItems" in line]
    assert counted == [[1.0], [1.0]]  # one per listing that met it
    # A read by id is a server error naming the code, not a crash
    answer = call_http_api("GET", "/jobs/j_bad", token=world.token())
    assert (answer.status, answer.body["code"]) == (500, "unreadable_job")


def test_an_unreadable_job_holding_a_slot_never_stops_the_cleanup(world: World) -> None:
    # Given a good running job and an unreadable item that holds a run slot of the tenant
    good = _post(world, DEMO).body["job"]["jobId"]
    world.start("acme", good)
    _store_unreadable_job(world, "acme", "j_bad", like=good)
    slots = DynamoRunSlots(world.client, world.settings.limits_table)
    assert slots.acquire("acme", "j_bad", limit=10)

    # When the hourly cleanup runs
    report = world.run_cleanup()

    # Then it ran to the end: the unreadable item is skipped and reported, its slot freed,
    # and the good job keeps its own
    assert report["ran"] is True
    assert report["unreadable_jobs"] == ["acme#j_bad"]
    assert report["released_slots"] == ["j_bad"]
    assert report["failed_jobs"] == []
    assert slots.holders() == {"acme": {good}}
