"""`tether jobs …` and `tether watch` against the scripted server: arguments, output, exits."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from infra.cli import main
from infra.local.secrets import local_secrets
from shared.domain.models import JobStatus
from tests.integration.fake_tether import (
    JOB,
    FakeSocket,
    FakeTether,
    Script,
    batch,
    job_state,
    problem_reply,
    progress,
    status,
    subscribed,
)


@pytest.fixture
def server() -> Iterator[FakeTether]:
    fake = FakeTether().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never touch the developer's keychain: tokens go to the 0600 file under tmp_path.
    monkeypatch.setattr(keyring, "get_keyring", keyring.backends.fail.Keyring)
    for name in ("TETHER_HTTP_URL", "TETHER_WS_URL", "TETHER_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def urls(server: FakeTether, state_dir: Path) -> list[str]:
    return [
        "--http-url",
        server.http_url,
        "--ws-url",
        server.ws_url,
        "--token",
        "user-token",
        "--state-dir",
        str(state_dir),
    ]


def test_create_demo_sends_the_request_and_stores_the_resume_token(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a demo job is created with every option
    code = main(
        [
            "jobs",
            "create",
            "demo",
            "--items",
            "500",
            "--delay-ms",
            "5",
            "--fail-at",
            "7",
            "--flaky-at",
            "3",
            "--flaky-at",
            "3",
            "--priority",
            "high",
            "--max-retries",
            "2",
            "--timeout",
            "600",
            "--idempotency-key",
            "k-1",
            *urls(server, tmp_path),
        ]
    )

    # Then the API got exactly that request, and the resume token is kept 0600
    assert code == 0
    sent = server.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", "/jobs")
    assert sent["headers"]["Authorization"] == "Bearer user-token"
    assert sent["headers"]["Idempotency-Key"] == "k-1"
    assert sent["body"]["type"] == "demo"
    assert sent["body"]["params"] == {
        "items": 500,
        "delayMs": 5,
        "permanentFailures": [7],
        "transientFailures": [3, 3],
    }
    assert sent["body"]["priority"] == "high"
    assert sent["body"]["retry"]["maxRetries"] == 2
    assert sent["body"]["timeoutSeconds"] == 600
    out = capsys.readouterr().out
    assert f"created {JOB} (demo, queued, priority normal)" in out
    assert f"tether watch {JOB}" in out
    tokens = tmp_path / "tokens.json"
    assert json.loads(tokens.read_text()) == {JOB: "resume-token-1"}
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600


def test_create_csv_import(server: FakeTether, tmp_path: Path) -> None:
    code = main(
        [
            "jobs",
            "create",
            "csv_import",
            "--bucket",
            "imports",
            "--key",
            "a/b.csv",
            *urls(server, tmp_path),
        ]
    )

    assert code == 0
    assert server.requests[0]["body"]["params"] == {"bucket": "imports", "key": "a/b.csv"}


def test_list_filters_and_prints_a_table(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.jobs = [job_state(seq=3, processed=4, total=8), job_state(seq=9, processed=8, total=8)]

    code = main(["jobs", "list", "--status", "running", "--type", "demo", *urls(server, tmp_path)])

    assert code == 0
    assert server.requests[0]["query"] == {"status": "running", "type": "demo"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "TYPE", "STATUS", "PRIO", "PROGRESS"]
    assert lines[1].split() == [JOB, "demo", "running", "normal", "50.0%", "4/8"]
    assert len(lines) == 3


def test_get_prints_a_summary_or_json(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.state = job_state(seq=3, processed=4, total=8)

    assert main(["jobs", "get", JOB, *urls(server, tmp_path)]) == 0
    summary = capsys.readouterr().out
    assert main(["jobs", "get", JOB, "--json", *urls(server, tmp_path)]) == 0
    as_json = json.loads(capsys.readouterr().out)

    assert f"job {JOB}  type demo  status running" in summary
    assert "processed 4/8" in summary
    assert (as_json["jobId"], as_json["seq"], as_json["counters"]["processed"]) == (JOB, 3, 4)


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
def test_control_posts_the_action(server: FakeTether, tmp_path: Path, action: str) -> None:
    server.state = job_state(seq=3, processed=4)

    code = main(["jobs", action, JOB, *urls(server, tmp_path)])

    assert code == 0
    assert (server.requests[0]["method"], server.requests[0]["path"]) == (
        "POST",
        f"/jobs/{JOB}/{action}",
    )


def test_a_problem_prints_its_title_and_detail_and_exits_1(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.replies[f"POST /jobs/{JOB}/pause"] = [
        problem_reply(409, "illegal_transition", "job is completed; cannot pause")
    ]

    code = main(["jobs", "pause", JOB, *urls(server, tmp_path)])

    assert code == 1
    assert capsys.readouterr().err.strip() == "error: Conflict: job is completed; cannot pause"


def test_without_endpoints_it_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["jobs", "list", "--state-dir", str(tmp_path)])

    assert code == 1
    err = capsys.readouterr().err
    assert "--http-url and --ws-url" in err
    assert "tether dev" in err


def test_the_local_stack_file_and_a_minted_token_are_the_defaults(
    server: FakeTether, tmp_path: Path
) -> None:
    # Given what `tether dev` leaves behind: dev.json and the local secrets
    (tmp_path / "dev.json").write_text(
        json.dumps(
            {
                "httpUrl": server.http_url,
                "wsUrl": server.ws_url,
                "managementUrl": "http://127.0.0.1:1/@connections",
                "awsEndpoint": "http://127.0.0.1:2",
            }
        )
    )
    local_secrets(tmp_path)

    # When a command runs with no connection flag
    code = main(["jobs", "list", "--state-dir", str(tmp_path)])

    # Then it reached the stack with a freshly minted JWT
    assert code == 0
    assert server.requests[0]["headers"]["Authorization"].startswith("Bearer ey")


def test_environment_variables_choose_the_endpoints(
    server: FakeTether, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_HTTP_URL", server.http_url)
    monkeypatch.setenv("TETHER_WS_URL", server.ws_url)
    monkeypatch.setenv("TETHER_TOKEN", "env-token")

    code = main(["jobs", "list", "--state-dir", str(tmp_path)])

    assert code == 0
    assert server.requests[0]["headers"]["Authorization"] == "Bearer env-token"


async def _drops_after_two(socket: FakeSocket) -> None:
    await socket.expect("subscribe")
    await socket.send(
        subscribed(head=2, replayed=2), batch(status(1, JobStatus.RUNNING), progress(2, 4))
    )
    await asyncio.sleep(0.05)
    socket.kill()


def _then_ends(final: JobStatus) -> Script:
    async def script(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(
            subscribed(head=2, replayed=0), progress(3, 10), status(4, final, **_outcome(final))
        )
        await socket.until_closed()

    return script


def _outcome(final: JobStatus) -> dict[str, object]:
    if final is JobStatus.FAILED:
        return {"error": {"code": "item_failed", "message": "item 7 failed permanently"}}
    return {}


def test_watch_survives_a_drop_and_prints_plain_lines(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the job's resume token from `jobs create`, and a socket that drops mid-run
    (tmp_path / "tokens.json").write_text(json.dumps({JOB: "resume-token-1"}))
    server.scripts = [_drops_after_two, _then_ends(JobStatus.COMPLETED)]

    # When the job is watched (stdout is not a terminal here)
    code = main(["watch", JOB, "--first-wait", "0.01", *urls(server, tmp_path)])

    # Then it reconnected with the resume token, resumed from seq 2, and ended completed
    assert code == 0
    assert {c["protocols"] for c in server.connections} == {"tether.v2,bearer.resume-token-1"}
    assert [a["since"] for _, a in server.subscribes()] == [0, 2]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"subscribed to {JOB}: log at seq 2, 2 replayed"
    assert lines[1] == "status running  (seq 1)"
    assert lines[2] == (
        "progress  40.0%  processed 4/10  succeeded 4  failed 0  skipped 0  (seq 2)"
    )
    assert lines[3].startswith("connection lost (")
    assert lines[3].endswith("reconnecting in 0.01 s (1/5)")
    assert lines[-1] == (
        f"job {JOB} completed: 100.0%  processed 10/10  succeeded 10  failed 0  skipped 0"
    )


@pytest.mark.parametrize(("final", "code"), [(JobStatus.FAILED, 3), (JobStatus.CANCELLED, 4)])
def test_watch_exits_with_the_jobs_outcome(
    server: FakeTether,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    final: JobStatus,
    code: int,
) -> None:
    server.scripts = [_drops_after_two, _then_ends(final)]

    assert main(["watch", JOB, "--first-wait", "0.01", *urls(server, tmp_path)]) == code
    out = capsys.readouterr().out
    if final is JobStatus.FAILED:
        assert out.rstrip().endswith("error item_failed: item 7 failed permanently")


def test_watch_of_a_missing_job_exits_5(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.scripts = [503]

    code = main(["watch", JOB, "--attempts", "1", "--first-wait", "0.01", *urls(server, tmp_path)])

    assert code == 5
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"job {JOB} is gone")


def test_watch_that_cannot_reconnect_exits_6(server: FakeTether, tmp_path: Path) -> None:
    server.scripts = [503]
    server.state = job_state(seq=2, processed=4)

    code = main(["watch", JOB, "--attempts", "2", "--first-wait", "0.01", *urls(server, tmp_path)])

    assert code == 6
    assert len(server.connections) == 3


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["jobs", "--help"], "create"),
        (["jobs", "create", "--help"], "csv_import"),
        (["jobs", "create", "demo", "--help"], "--fail-at"),
        (["jobs", "create", "csv_import", "--help"], "--bucket"),
        (["jobs", "list", "--help"], "--status"),
        (["jobs", "get", "--help"], "JOB"),
        (["watch", "--help"], "exit status: 0 completed"),
    ],
)
def test_every_command_has_help(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)

    assert exit_.value.code == 0
    assert expected in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["jobs", "create", "demo", "--items", "many"])

    assert exit_.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_watch_needs_no_user_token_when_the_resume_token_is_stored(
    server: FakeTether, tmp_path: Path
) -> None:
    async def finished_job(socket: FakeSocket) -> None:
        await socket.expect("subscribe")
        await socket.send(subscribed(head=1, replayed=1), batch(status(1, JobStatus.COMPLETED)))
        await socket.until_closed()

    (tmp_path / "tokens.json").write_text(json.dumps({JOB: "resume-token-1"}))
    server.scripts = [finished_job]
    endpoints = ["--http-url", server.http_url, "--ws-url", server.ws_url]

    code = main(["watch", JOB, "--state-dir", str(tmp_path), *endpoints])

    assert code == 0
    assert server.connections[0]["protocols"] == "tether.v2,bearer.resume-token-1"


def test_watch_without_any_token_says_what_to_do(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = ["--http-url", server.http_url, "--ws-url", server.ws_url]

    code = main(["watch", JOB, "--state-dir", str(tmp_path), *endpoints])

    assert code == 1
    assert "no token: pass --token or set TETHER_TOKEN" in capsys.readouterr().err
    assert server.connections == []


def test_delete_removes_the_job_and_its_stored_token(
    server: FakeTether, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tokens.json").write_text(json.dumps({JOB: "resume-token-1", "j2": "other"}))

    code = main(["jobs", "delete", JOB, *urls(server, tmp_path)])

    assert code == 0
    assert (server.requests[0]["method"], server.requests[0]["path"]) == ("DELETE", f"/jobs/{JOB}")
    assert json.loads((tmp_path / "tokens.json").read_text()) == {"j2": "other"}
    assert capsys.readouterr().out.strip() == f"deleted {JOB}"
