"""The HTTP API drives the JobRunner: create launches, pause/resume/cancel reach the execution."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from functions import http_api
from shared import constants as c
from shared.auth_settings import AuthSettings
from shared.domain.auth import Scope
from shared.domain.models import JobStatus
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import http_api_context
from tests.integration.http import call_http_api
from tests.integration.runner.harness import Stack

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_SECRET = "user-secret-for-tests-0123456789abcdef"


@pytest.fixture
def call(
    stack: Stack,
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    for spec in TABLES:
        monkeypatch.setenv(spec.env_var, table_names[spec.key])
    monkeypatch.setenv(c.ENV_CURSOR_SECRET, "cursor-secret-for-tests-0123456789")
    monkeypatch.setenv(c.ENV_AUTH_HS256_SECRET, USER_SECRET)
    monkeypatch.setenv(c.ENV_RESUME_SIGNING_KEY, "resume-key-for-tests-0123456789abcdef")
    built = http_api_context(
        TetherSettings(), AuthSettings(), client=dynamodb, clock=stack.clock, runner=stack.runner
    )
    monkeypatch.setattr(http_api, "context", lambda: built)
    token = mint_dev_token(
        USER_SECRET,
        tenant="acme",
        subject="u1",
        scopes=list(Scope),
        ttl=timedelta(hours=1),
        clock=stack.clock,
    )

    def request(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        answer = call_http_api(method, path, token=token, body=body)
        return answer.status, answer.body

    return request


def test_post_jobs_launches_the_runner_and_the_job_completes(call: Any, stack: Stack) -> None:
    status, created = call("POST", "/jobs", {"type": "demo", "params": {"items": 300}})
    assert status == 202
    ref = JobRef("acme", created["job"]["jobId"])

    job = stack.wait_for_job(ref, JobStatus.COMPLETED)

    assert job.counters.succeeded == 300
    assert job.execution_arn is not None
    assert stack.wait(job.execution_arn)["status"] == "SUCCEEDED"
    _, state = call("GET", f"/jobs/{ref.job_id}")
    assert (state["status"], state["counters"]["processed"]) == ("completed", 300)
    _, log = call("GET", f"/jobs/{ref.job_id}/messages")
    assert [m["seq"] for m in log["messages"]] == list(range(1, state["seq"] + 1))


def test_http_pause_resume_and_cancel_reach_the_parked_execution(call: Any, stack: Stack) -> None:
    def pause_after_first_batch(event: dict[str, Any], _answer: Any) -> None:
        if event["cursor"] == 0:
            assert call("POST", f"/jobs/{event['jobId']}/pause")[0] == 200

    stack.after_batch.append(pause_after_first_batch)
    _, created = call("POST", "/jobs", {"type": "demo", "params": {"items": 500}})
    ref = JobRef("acme", created["job"]["jobId"])
    paused = stack.wait_for_job(ref, JobStatus.PAUSED)
    assert paused.execution_arn is not None

    # When the user cancels the paused job over HTTP
    status, state = call("POST", f"/jobs/{ref.job_id}/cancel")

    # Then it ends at once, and the parked execution is released and finishes too
    assert (status, state["status"]) == (200, "cancelled")
    assert stack.wait(paused.execution_arn)["status"] == "SUCCEEDED"
    assert stack.service.get(ref).counters.processed == 100
    assert stack.states_entered(paused.execution_arn)[-3:] == ["Finalize", "PushDecision", "Done"]
