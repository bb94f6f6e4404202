"""The event shapes AWS sends (events/aws/, from `sam local generate-event` and Powertools'
recorded events) through the handler each is wired to: handled, or refused with its reason,
never a crash or a logged traceback; and `tether replay` reports every file it is given.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from infra.cli import main
from infra.local.replay import Replayed, replay

AWS_EVENTS = Path(__file__).parents[2] / "events" / "aws"
SAMPLES = sorted(AWS_EVENTS.glob("*.json"))

# file -> (handler, verdict): what Tether does with each shape, as `tether replay` prints it
EXPECTED = {
    "http_v2_post_jobs_base64.json": ("http_api", "handled"),
    "http_v2_get_job_cookies.json": ("http_api", "handled"),
    "http_v2_sam_default.json": ("http_api", "refused: status 415"),
    "ws_connect_powertools.json": ("ws_handler", "refused: status 401"),
    "ws_authorizer_connect_powertools.json": (
        "authorizer",
        "refused: Unauthorized (API Gateway answers 401)",
    ),
    "ws_message_powertools.json": ("ws_handler", "handled"),
    "ws_disconnect_powertools.json": ("ws_handler", "handled"),
    "dynamodb_stream_insert_modify_remove.json": (
        "dispatcher",
        "refused: 1 record(s) reported failed, for the stream to retry",
    ),
    "dynamodb_stream_ttl_remove.json": ("dispatcher", "handled"),
    "eventbridge_s3_object_created_powertools.json": ("launcher", "handled"),
    "eventbridge_scheduler_powertools.json": (
        "launcher",
        "refused: nothing launched (validation_failed)",
    ),
    "scheduled_event_hourly_rule.json": ("cleanup", "handled"),
    "sns_notification.json": (None, "not replayed: no Tether function is wired to aws:sns events"),
}


@pytest.fixture(scope="module")
def replayed() -> dict[str, Replayed]:
    """Every file replayed in one call, as `tether replay events/aws/*.json` does."""
    return {result.path.name: result for result in replay(SAMPLES)}


def test_every_sample_has_an_expected_outcome_and_a_readme_line() -> None:
    readme = (AWS_EVENTS / "README.md").read_text()
    assert {path.name for path in SAMPLES} == set(EXPECTED)
    assert all(f"`{name}`" in readme for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_shape_is_handled_or_refused_without_a_traceback(
    name: str, replayed: dict[str, Replayed]
) -> None:
    result = replayed[name]
    assert (result.handler, result.outcome) == EXPECTED[name], result.answer
    assert result.tracebacks == []


def test_a_base64_body_creates_the_job_it_encodes(replayed: dict[str, Replayed]) -> None:
    # Given sam's HTTP API v2 event, whose JSON body is base64 (isBase64Encoded) with cookies
    event = json.loads((AWS_EVENTS / "http_v2_post_jobs_base64.json").read_text())
    assert event["isBase64Encoded"] is True
    assert event["cookies"]
    sent = json.loads(base64.b64decode(event["body"]))

    # Then the job created is the one the body encodes, and its execution was started
    result = replayed["http_v2_post_jobs_base64.json"]
    created = json.loads(result.answer["body"])
    assert result.answer["statusCode"] == 202
    assert (created["job"]["type"], created["job"]["params"]) == (sent["type"], sent["params"])
    assert [execution["input"]["jobId"] for execution in result.started] == [
        created["job"]["jobId"]
    ]


def test_the_websocket_message_of_an_unknown_action_gets_an_error_frame(
    replayed: dict[str, Replayed],
) -> None:
    result = replayed["ws_message_powertools.json"]
    (frames,) = result.posted.values()
    (frame,) = frames
    assert (frame["type"], frame["data"]["code"]) == ("error", "bad_request")
    assert "'chat'" in frame["data"]["message"]  # the action it does not know, named


def test_an_object_created_in_the_import_bucket_launches_one_csv_import(
    replayed: dict[str, Replayed],
) -> None:
    result = replayed["eventbridge_s3_object_created_powertools.json"]
    assert (result.answer["launched"], result.answer["tenantId"]) == (True, "local")
    assert [execution["input"]["jobId"] for execution in result.started] == [result.answer["jobId"]]


def test_tether_replay_reports_every_file_and_fails_if_one_reached_no_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SNS notification (no Tether function takes one), a file that is not JSON, and
    # an HTTP request, in that order
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    files = [
        AWS_EVENTS / "sns_notification.json",
        broken,
        AWS_EVENTS / "http_v2_get_job_cookies.json",
    ]

    # When they are replayed together
    code = main(["replay", *map(str, files)])

    # Then each is reported, the request after the two unusable files still ran, and the
    # command fails
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("==")]
    assert code == 1
    assert verdicts[0] == (
        f"== {files[0]} -> no handler: not replayed: no Tether function is wired to aws:sns events"
    )
    assert verdicts[1].startswith(f"== {broken} -> no handler: not replayed: Expecting")
    assert verdicts[2] == f"== {files[2]} -> http_api: handled"
    assert len(verdicts) == 3
