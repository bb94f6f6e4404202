"""Every sample event in events/ replays green through its real handler (`tether replay`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli import main
from infra.local.replay import Replayed, handler_for, replay
from shared.runner.definition import TASK_STEPS

EVENTS = sorted(Path(__file__).parents[2].joinpath("events").glob("*.json"))
_REPLAYED: dict[Path, Replayed] = {}


def replayed(path: Path) -> Replayed:
    """The sample's replay, once for the module: every replay starts in a fresh local AWS (its
    own tables, seed and state machine), so a sample answers the same whichever test asks
    first, and the module need not pay for it again (about half a second each)."""
    if path not in _REPLAYED:
        (_REPLAYED[path],) = replay([path])
    return _REPLAYED[path]


HTTP_ROUTES = {
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{jobId}"),
    ("GET", "/jobs/{jobId}/messages"),
    ("POST", "/jobs/{jobId}/cancel"),
    ("POST", "/jobs/{jobId}/pause"),
    ("POST", "/jobs/{jobId}/resume"),
    ("DELETE", "/jobs/{jobId}"),
    ("GET", "/openapi.json"),
    ("POST", "/schedules"),
    ("GET", "/schedules"),
    ("GET", "/schedules/{scheduleId}"),
    ("POST", "/schedules/{scheduleId}/pause"),
    ("POST", "/schedules/{scheduleId}/resume"),
    ("POST", "/schedules/{scheduleId}/run"),
    ("DELETE", "/schedules/{scheduleId}"),
    ("POST", "/devices"),
    ("DELETE", "/devices/{deviceId}"),
}


def test_every_handler_and_every_http_route_has_a_sample() -> None:
    handlers = set()
    routes = set()
    for path in EVENTS:
        event = json.loads(path.read_text())
        name, _ = handler_for(event, path.name)
        handlers.add(name)
        if name == "http_api":
            raw = (
                event["rawPath"]
                .replace("${JOB_ID}", "{jobId}")
                .replace("${DONE_JOB_ID}", "{jobId}")
                .replace("${SCHEDULE_ID}", "{scheduleId}")
                .replace("${DEVICE_ID}", "{deviceId}")
            )
            routes.add((event["requestContext"]["http"]["method"], raw))
    assert handlers == {
        "http_api",
        "authorizer",
        "ws_handler",
        "dispatcher",
        "launcher",
        "cleanup",
        *TASK_STEPS,  # the JobRunner's: prepare, process, record_failure, ..., notify
    }
    assert routes == HTTP_ROUTES


@pytest.mark.parametrize("path", EVENTS, ids=[p.name for p in EVENTS])
def test_sample_replays_green(path: Path) -> None:
    result = replayed(path)
    assert result.ok, result.answer
    if result.handler == "http_api":
        assert 200 <= result.answer["statusCode"] < 300, result.answer


def test_tether_replay_prints_each_answer(capsys: pytest.CaptureFixture[str]) -> None:
    chosen = [str(p) for p in EVENTS if p.name in {"http_get_job.json", "ws_subscribe.json"}]
    assert main(["replay", *chosen]) == 0
    out = capsys.readouterr().out
    assert "-> http_api" in out
    assert "-> ws_handler" in out
    assert '"statusCode": 200' in out
    assert "frames posted to connection" in out  # what the client would have received
    assert '"type": "subscribed"' in out


def test_websocket_samples_post_the_frames_a_client_expects() -> None:
    by_name = {p.name: p for p in EVENTS}
    expected = {
        "ws_subscribe.json": ["subscribed", "batch"],
        "ws_ping.json": ["pong"],
        "ws_default_unknown_action.json": ["error"],
        "ws_ack.json": [],
        "ws_cancel.json": [],
        "ws_unsubscribe.json": [],
    }
    for name, types in expected.items():
        result = replayed(by_name[name])
        frames = [frame for sent in result.posted.values() for frame in sent]
        assert [frame["type"] for frame in frames] == types, name


def test_launcher_and_cleanup_samples_do_their_work() -> None:
    by_name = {p.name: p for p in EVENTS}
    # A job for later and a schedule's run are launched: an execution is started for each,
    # which a replay records but does not run (the job stays queued)
    for name in ("launcher_scheduled_job.json", "launcher_schedule_run.json"):
        result = replayed(by_name[name])
        assert (result.handler, result.answer["launched"]) == ("launcher", True), name
        assert result.answer["status"] == "queued"
        (started,) = result.started
        assert started["input"] == {
            "tenantId": "local",
            "jobId": result.answer["jobId"],
            "generation": 0,
        }
    # An object under imports/local/ becomes a csv_import job of tenant local
    imported = replayed(by_name["launcher_s3_import.json"])
    assert (imported.answer["launched"], imported.answer["tenantId"]) == (True, "local")
    # The hourly cleanup runs once in a fresh world
    cleaned = replayed(by_name["cleanup_hourly.json"])
    assert (cleaned.handler, cleaned.answer["ran"]) == ("cleanup", True)


def test_the_notify_sample_pushes_the_finished_job_to_the_seeded_iphone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the Notify task's sample (Finalize's output for the seeded finished job)
    sample = next(p for p in EVENTS if p.name == "runner_notify.json")

    # When it is replayed
    result = replayed(sample)

    # Then the seeded iPhone got one push for that job, and `tether replay` shows it
    assert result.answer["pushes"] == {"sent": 1}
    (push,) = result.pushed
    assert (push["platform"], push["jobId"]) == ("ios", result.answer["jobId"])
    assert push["title"] == "Demo finished"
    assert main(["replay", str(sample)]) == 0
    assert "push that would have reached ios" in capsys.readouterr().out


def test_the_job_runner_samples_take_each_task_step_as_the_state_machine_would() -> None:
    by_name = {p.name: p for p in EVENTS if p.name.startswith("runner_")}
    results = {name: replayed(path) for name, path in by_name.items()}

    # Prepare starts the queued job under the execution it was given, and says: process
    prepared = results["runner_prepare.json"].answer
    assert (prepared["next"], prepared["cursor"]) == ("process", 0)
    assert prepared["executionArn"].endswith(f"{prepared['jobId']}-g0")

    # ProcessBatch runs the running job's last batch (items 3 to 9) and says: finalize, completed
    processed = results["runner_process.json"].answer
    assert (processed["next"], processed["outcome"], processed["cursor"]) == (
        "finalize",
        "completed",
        10,
    )
    assert processed["executed"] == 1

    # RecordFailure takes a transient error as worth a retry after the job's first backoff
    failed = results["runner_record_failure.json"].answer
    assert (failed["next"], failed["waitSeconds"]) == ("retry", 1)

    # AwaitResume parks the job whose pause was requested
    assert results["runner_await_resume.json"].answer == {"parked": True}

    # Finalize completes the processed job, asks for a push, and its slot goes to the
    # tenant's waiting job: one execution started
    finalized = results["runner_finalize.json"]
    assert finalized.answer["status"] == "completed"
    assert (finalized.answer["push"], finalized.answer["graceSeconds"]) == (True, 15)
    assert [execution["name"].endswith("-g0") for execution in finalized.started] == [True]


def test_a_handler_error_is_replayed_as_lambda_reports_it(tmp_path: Path) -> None:
    # Given a Prepare sample for a job that does not exist
    sample = tmp_path / "runner_prepare.json"
    sample.write_text(json.dumps({"tenantId": "local", "jobId": "j_missing", "generation": 0}))

    # When it is replayed / Then the answer is Lambda's function error and the replay fails
    (result,) = replay([sample])
    assert result.answer["errorType"] == "JobNotFound"
    assert not result.ok
    assert main(["replay", str(sample)]) == 1
