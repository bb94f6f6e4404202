"""A moto world for the schedules, launcher, priorities and cleanup tests (issue 8).

Real DynamoDB (conditional writes on the run slots and the lease), real EventBridge Scheduler
(moto stores what the adapter writes), the real HTTP, launcher and cleanup handlers; the
JobRunner's executions are recorded instead of run, so a test decides when a job starts
running and when it ends (`start`, `finish`) and reads the order jobs were launched in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import boto3
import pytest

from functions import cleanup as cleanup_handler
from functions import http_api, http_schedules
from functions import launcher as launcher_handler
from infra.local.events import LocalLambdaContext
from shared import constants as c
from shared.adapters.scheduler import EventBridgeScheduler
from shared.adapters.stepfunctions import StepFunctionsExecutions
from shared.auth_settings import AuthSettings
from shared.domain.auth import Scope
from shared.domain.clock import ManualClock
from shared.domain.models import JobRecord, JobStatus
from shared.runner.state import Outcome
from shared.schedule_wiring import cleanup, launcher, schedules_api
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef, JobService
from shared.services.ports import StartedExecution
from shared.services.runner import JobRunner
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import admission, http_api_context, load_settings
from tests.integration.http import call_http_api

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_SECRET = "user-secret-for-tests-0123456789abcdef"
GROUP = "tether-test"
SCHEDULER_DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:tether-test-launch-dlq"


@dataclass
class RecordedExecutions:
    """An ExecutionGateway and ExecutionStatuses that records starts instead of running."""

    started: list[str] = field(default_factory=list)  # job ids, in launch order
    statuses: dict[str, str] = field(default_factory=dict)  # arn -> status (default RUNNING)

    def start(self, name: str, run_input: dict[str, Any]) -> StartedExecution:
        arn = f"arn:aws:states:us-east-1:123456789012:execution:runner:{name}"
        if run_input["jobId"] not in self.started:
            self.started.append(run_input["jobId"])
        return StartedExecution(arn=arn, running=self.status(arn) == "RUNNING")

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> bool:
        del task_token, output
        return True

    def status(self, execution_arn: str) -> str | None:
        return self.statuses.get(execution_arn, "RUNNING")


@dataclass
class World:
    client: DynamoDBClient
    settings: TetherSettings
    clock: ManualClock
    jobs: JobService
    runner: JobRunner
    # RecordedExecutions, or StepFunctionsExecutions on moto (`sfn_world`, with `sfn` set).
    executions: Any
    scheduler: Any  # boto3 "scheduler" client on moto
    tables: dict[str, str]
    sfn: Any = None  # boto3 "stepfunctions" client on moto, in `sfn_world`

    def token(self, tenant: str = "acme", subject: str = "alice") -> str:
        return mint_dev_token(
            USER_SECRET,
            tenant=tenant,
            subject=subject,
            scopes=[Scope.JOBS_READ, Scope.JOBS_WRITE],
            ttl=timedelta(hours=1),
            clock=self.clock,
        )

    def call(
        self, method: str, path: str, body: Any = None, *, tenant: str = "acme"
    ) -> tuple[int, Any]:
        path, _, query = path.partition("?")
        answer = call_http_api(
            method, path, token=self.token(tenant), body=body, query=dict(parse_qsl(query)) or None
        )
        return answer.status, answer.body

    def aws_schedule(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.scheduler.get_schedule(GroupName=GROUP, Name=name)
        return answer

    def aws_schedule_names(self) -> set[str]:
        listed = self.scheduler.list_schedules(GroupName=GROUP)["Schedules"]
        return {entry["Name"] for entry in listed}

    def launch(self, event: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = launcher_handler.handler(
            event, LocalLambdaContext(function_name="tether-launcher")
        )
        return answer

    def run_cleanup(self, request_id: str = "cleanup-1") -> dict[str, Any]:
        answer: dict[str, Any] = cleanup_handler.handler(
            {"detail-type": "Scheduled Event", "source": "aws.events"},
            LocalLambdaContext(function_name="tether-cleanup", aws_request_id=request_id),
        )
        return answer

    def start(self, tenant: str, job_id: str, total: int = 10) -> JobRecord:
        """What Prepare does when the launched execution begins: the job runs."""
        arn = f"arn:aws:states:us-east-1:123456789012:execution:runner:{job_id}-g0"
        return self.jobs.start(JobRef(tenant, job_id), total=total, execution_arn=arn)

    def complete_launched(self, tenant: str = "acme") -> None:
        """Run every launched job of `tenant` to completion, as the JobRunner would."""
        for job_id in list(self.executions.started):
            job = self.jobs.get(JobRef(tenant, job_id))
            if job.status is JobStatus.QUEUED:
                self.start(tenant, job_id)
            if not job.is_terminal:
                self.finish(tenant, job_id)

    def finish(self, tenant: str, job_id: str) -> JobRecord:
        """What Finalize does: the job completes and gives its run slot back."""
        return self.runner.finalize(JobRef(tenant, job_id), Outcome.COMPLETED)


@pytest.fixture
def world(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
    service: JobService,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    return _world(RecordedExecutions(), dynamodb, table_names, clock, service, monkeypatch)


@pytest.fixture
def sfn_world(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
    service: JobService,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    """The world with real Step Functions executions on moto (not interpreted: they stay
    RUNNING until a test stops them), so closed executions and their names behave as on AWS."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="runner",
        definition=json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/runner",
    )
    executions = StepFunctionsExecutions(sfn, machine["stateMachineArn"])
    built = _world(executions, dynamodb, table_names, clock, service, monkeypatch)
    built.sfn = sfn
    return built


def _world(
    executions: RecordedExecutions | StepFunctionsExecutions,
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    clock: ManualClock,
    service: JobService,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment.update(
        {
            c.ENV_CURSOR_SECRET: "cursor-secret-for-tests-0123456789",
            c.ENV_AUTH_HS256_SECRET: USER_SECRET,
            c.ENV_RESUME_SIGNING_KEY: "resume-key-for-tests-0123456789abcdef",
            c.ENV_SCHEDULER_GROUP: GROUP,
            c.ENV_MAX_RUNNING_PER_TENANT: "2",
            c.ENV_WRITE_RATE_PER_MINUTE: "1000",
            c.ENV_SCHEDULER_DLQ_ARN: SCHEDULER_DLQ_ARN,
        }
    )
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(TetherSettings())
    runner = JobRunner(
        service,
        clock=clock,
        executions=executions,
        batch_size=100,
        admission=admission(settings, service, dynamodb),
    )
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    EventBridgeScheduler(scheduler, group=GROUP, target_arn="x", role_arn="y").ensure_group()
    auth = AuthSettings()
    jobs_context = http_api_context(settings, auth, client=dynamodb, clock=clock, runner=runner)
    schedules = schedules_api(settings, client=dynamodb, clock=clock, runner=runner)
    built_launcher = launcher(settings, client=dynamodb, clock=clock, runner=runner)
    built_cleanup = cleanup(
        settings, client=dynamodb, clock=clock, runner=runner, executions=executions
    )
    monkeypatch.setattr(http_api, "context", lambda: jobs_context)
    monkeypatch.setattr(http_schedules, "context", lambda: schedules)
    monkeypatch.setattr(launcher_handler, "context", lambda: built_launcher)
    monkeypatch.setattr(cleanup_handler, "context", lambda: built_cleanup)
    return World(
        client=dynamodb,
        settings=settings,
        clock=clock,
        jobs=service,
        runner=runner,
        executions=executions,
        scheduler=scheduler,
        tables=table_names,
    )
