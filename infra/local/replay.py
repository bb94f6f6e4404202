"""`tether replay`: run sample events through the real handlers, in process, against moto.

Each file in `events/` is an event as AWS delivers it. The replay picks the handler by the
event's shape, prepares a throwaway AWS (moto, the tables from the shared specs, fresh
secrets), seeds what the samples refer to, fills the placeholders, invokes the handler with a
Lambda-like context and returns its answer:

* `${TETHER_TOKEN}`: a fresh user token (tenant `local`, user `dev`, every scope);
* `${JOB_ID}`: a running demo job of that user; `${DONE_JOB_ID}`: a completed one;
* `${SCHEDULE_ID}`: a recurring schedule of that user; `${SCHEDULED_JOB_ID}`: a job for later;
* `${DEVICE_ID}`: an iPhone of that user, registered on the local SNS push applications;
* for the JobRunner's task steps: `${QUEUED_JOB_ID}` (not started yet, for Prepare),
  `${PAUSING_JOB_ID}` (running, pause requested, for AwaitResume) and `${PROCESSED_JOB_ID}`
  (running, every item processed, for Finalize).

The launcher (EventBridge Scheduler's input, or S3's `Object Created` from the import rule) and
the cleanup (the hourly rule's `Scheduled Event`) replay the same way. The JobRunner's task
steps receive Step Functions state, not an AWS event, and overlap in shape (ProcessBatch and
Finalize both take the whole `RunState`): a sample named `runner_<step>.json` goes to that
step's handler. The JobRunner state machine exists (the shared definition), but its executions
do not run in a replay: launched jobs stay `queued`, and the executions a handler started are
listed instead. What a handler pushed (the Notify task) is read back with the local push sink.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

from functions import (
    authorizer,
    cleanup,
    dispatcher,
    http_api,
    launcher,
    runner,
    ws_handler,
)
from infra.local import dynamo_rules, moto_patches
from infra.local import stepfunctions as local_sfn
from infra.local.console import IMPORT_BUCKET
from infra.local.events import LocalLambdaContext, handler_caches
from infra.local.push_sink import PushSink, create_platform_applications, platform_environment
from shared import constants as c
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_tables import create_tables
from shared.adapters.scheduler import EventBridgeScheduler
from shared.domain.auth import Principal, Scope
from shared.domain.clock import SystemClock
from shared.domain.models import JobRecord, JobRequest, JobSchedule, Platform, ProgressDelta
from shared.domain.push import DeviceRegistration
from shared.domain.schedules import ScheduleRequest
from shared.push_wiring import devices
from shared.schedule_wiring import schedules_api
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef, JobService
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import AWS_CONFIG, job_service, load_settings

Handler = Callable[[dict[str, Any], Any], Any]
TENANT, USER = "local", "dev"
MANAGEMENT_URL = "https://local.execute-api.us-east-1.amazonaws.com/local"
SAMPLE_DEVICE_TOKEN = "5ample" + "0" * 58  # an APNs-shaped token; moto's SNS accepts any


@dataclass(frozen=True)
class Replayed:
    path: Path
    handler: str
    answer: Any
    posted: dict[str, list[Any]] = field(default_factory=dict)  # frames sent to @connections
    pushed: list[dict[str, Any]] = field(default_factory=list)  # what APNs/FCM would get
    started: list[dict[str, Any]] = field(default_factory=list)  # JobRunner executions started

    @property
    def ok(self) -> bool:
        if isinstance(self.answer, dict) and "errorType" in self.answer:
            return False  # the handler raised: Lambda's function error
        status = self.answer.get("statusCode", 200) if isinstance(self.answer, dict) else 200
        return isinstance(status, int) and status < 500


RUNNER_SAMPLE_PREFIX = "runner_"


def handler_for(event: dict[str, Any], file_name: str | None = None) -> tuple[str, Handler]:
    """Which Lambda this event is for: a `runner_<step>.json` sample by its name, else by shape."""
    stem = Path(file_name).stem if file_name else ""
    step = stem.removeprefix(RUNNER_SAMPLE_PREFIX) if stem.startswith(RUNNER_SAMPLE_PREFIX) else ""
    steps = local_sfn.runner_handlers()
    if step in steps:
        return step, steps[step]
    records = event.get("Records") or [{}]
    if event.get("kind") in {"job", "schedule"} or event.get("detail-type") == "Object Created":
        return "launcher", launcher.handler
    if event.get("detail-type") == "Scheduled Event":
        return "cleanup", cleanup.handler
    if records[0].get("eventSource") == "aws:dynamodb":
        return "dispatcher", dispatcher.handler
    if event.get("type") == "REQUEST":
        return "authorizer", authorizer.handler
    if event.get("version") == "2.0" and "http" in event.get("requestContext", {}):
        return "http_api", http_api.handler
    if "eventType" in event.get("requestContext", {}):
        return "ws_handler", ws_handler.handler
    if {"tenantId", "jobId", "push", "graceSeconds"} <= event.keys():
        return "notify", runner.notify  # the JobRunner's Notify task: Finalize's output
    raise ValueError("not an event Tether has a handler for")


@dataclass(frozen=True)
class _World:
    placeholders: dict[str, str]
    connections: DynamoConnectionStore


@contextmanager
def _environment() -> Iterator[_World]:
    moto_patches.install()
    dynamo_rules.install()
    keys = {name: secrets.token_urlsafe(48) for name in ("user", "resume", "cursor")}
    saved = dict(os.environ)
    try:
        with mock_aws():
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "replay")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "replay")
            client = boto3.client("dynamodb", config=AWS_CONFIG)
            tables = create_tables(client, "replay")
            os.environ.update({spec.env_var: tables[spec.key] for spec in TABLES})
            sns = boto3.client("sns")
            os.environ.update(platform_environment(create_platform_applications(sns)))
            os.environ.update(
                {
                    c.ENV_CURSOR_SECRET: keys["cursor"],
                    c.ENV_AUTH_HS256_SECRET: keys["user"],
                    c.ENV_RESUME_SIGNING_KEY: keys["resume"],
                    c.ENV_WEBSOCKET_MANAGEMENT_URL: MANAGEMENT_URL,
                    c.ENV_IMPORT_BUCKET: IMPORT_BUCKET,
                    "POWERTOOLS_METRICS_NAMESPACE": "Tether",
                }
            )
            for cache in handler_caches():
                cache.cache_clear()
            os.environ[c.ENV_STATE_MACHINE_ARN] = local_sfn.deploy_job_runner(
                lambda_client=boto3.client("lambda"),
                iam_client=boto3.client("iam"),
                sfn_client=boto3.client("stepfunctions"),
                handlers=local_sfn.runner_handlers(),
            )
            scheduler = boto3.client("scheduler", config=AWS_CONFIG)
            EventBridgeScheduler(
                scheduler, group=c.DEFAULT_SCHEDULER_GROUP, target_arn="", role_arn=""
            ).ensure_group()
            yield _World(_seed(client), DynamoConnectionStore(client, tables["connections"]))
    finally:
        for cache in handler_caches():
            cache.cache_clear()
        os.environ.clear()
        os.environ.update(saved)


def _seed(client: Any) -> dict[str, str]:
    jobs = job_service(TetherSettings(), client=client)
    running = _running(jobs, total=10, processed=3)
    done = _processed(jobs, total=1)
    jobs.complete(JobRef(TENANT, done.job_id), {"counters": done.counters.model_dump()})
    token = mint_dev_token(
        os.environ[c.ENV_AUTH_HS256_SECRET],
        tenant=TENANT,
        subject=USER,
        scopes=list(Scope),
        ttl=timedelta(hours=1),
        clock=SystemClock(),
    )
    later = jobs.create_job(
        _demo(10, schedule=JobSchedule(scheduled_for=SystemClock().now() + timedelta(hours=1))),
        tenant_id=TENANT,
        owner_id=USER,
    )
    queued = jobs.create_job(_demo(10), tenant_id=TENANT, owner_id=USER)
    pausing = _running(jobs, total=10)
    jobs.pause(JobRef(TENANT, pausing.job_id))
    processed = _processed(jobs, total=2)
    registered = devices(TetherSettings(), client=client).register(
        Principal(tenant_id=TENANT, subject=USER, scopes=frozenset(Scope)),
        DeviceRegistration(platform=Platform.IOS, token=SAMPLE_DEVICE_TOKEN),
    )
    return {
        "TETHER_TOKEN": token,
        "JOB_ID": running.job_id,
        "DONE_JOB_ID": done.job_id,
        "SCHEDULED_JOB_ID": later.job_id,
        "SCHEDULE_ID": _seed_schedule(client),
        "DEVICE_ID": registered.device.device_id,
        "QUEUED_JOB_ID": queued.job_id,
        "PAUSING_JOB_ID": pausing.job_id,
        "PROCESSED_JOB_ID": processed.job_id,
    }


def _demo(items: int, schedule: JobSchedule | None = None) -> JobRequest:
    return JobRequest(type="demo", params={"items": items}, schedule=schedule)


def _running(jobs: JobService, *, total: int, processed: int = 0) -> JobRecord:
    """A started demo job whose first `processed` items were committed in one batch."""
    job = jobs.create_job(_demo(total), tenant_id=TENANT, owner_id=USER)
    ref = JobRef(TENANT, job.job_id)
    job = jobs.start(ref, total=total)
    if not processed:
        return job
    delta = ProgressDelta(succeeded=processed)
    return jobs.commit_batch(ref, from_cursor=0, to_cursor=processed, delta=delta, current=job)


def _processed(jobs: JobService, *, total: int) -> JobRecord:
    """A running job whose every item was processed (what Finalize then sees)."""
    return _running(jobs, total=total, processed=total)


def _seed_schedule(client: Any) -> str:
    schedules = schedules_api(load_settings(), client=client)
    owner = Principal(tenant_id=TENANT, subject=USER, scopes=frozenset(Scope))
    request = ScheduleRequest.model_validate(
        {"name": "hourly demo", "expression": "rate(1 hour)", "job": _demo(10).model_dump()}
    )
    return schedules.create(owner, request).schedule_id


def _fill(text: str, placeholders: dict[str, str]) -> str:
    for name, value in placeholders.items():
        text = text.replace(f"${{{name}}}", value)
    return text


def replay(paths: list[Path]) -> list[Replayed]:
    """Replay each file in a fresh local AWS; returns what each handler answered."""
    results: list[Replayed] = []
    for path in paths:
        with _environment() as world:
            event = json.loads(_fill(path.read_text(), world.placeholders))
            name, handler = handler_for(event, path.name)
            connection = event.get("requestContext", {}).get("connectionId")
            if name == "ws_handler" and event["requestContext"].get("eventType") != "CONNECT":
                owner = Principal(tenant_id=TENANT, subject=USER, scopes=frozenset(Scope))
                world.connections.connect(connection, owner, SystemClock().now())
            answer = _invoke(handler, event, LocalLambdaContext(function_name=f"tether-{name}"))
            pushed = [delivery.summary() for delivery in PushSink().deliveries()]
            results.append(
                Replayed(path, name, answer, _posted_frames(), pushed, _started_executions())
            )
    return results


def _posted_frames() -> dict[str, list[Any]]:
    """What the handler posted through moto's @connections API, frame by frame."""
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    decoder = json.JSONDecoder()
    posted: dict[str, list[Any]] = {}
    for connection_id, connection in backend.connections.items():
        text, frames, at = connection.data.decode(), [], 0
        while at < len(text):  # moto concatenates the frames it receives
            frame, at = decoder.raw_decode(text, at)
            frames.append(frame)
        if frames:
            posted[connection_id] = frames
    return posted


def _invoke(handler: Handler, event: dict[str, Any], context: LocalLambdaContext) -> Any:
    """The handler's answer; an exception as Lambda reports it (and `ok` is then False)."""
    try:
        return handler(event, context)
    except Exception as error:  # any error is the answer, as Lambda reports a function error
        return {"errorType": type(error).__name__, "errorMessage": str(error)}


def _started_executions() -> list[dict[str, Any]]:
    """The JobRunner executions started during the replay (recorded by moto, never run)."""
    sfn = boto3.client("stepfunctions")
    machine = os.environ[c.ENV_STATE_MACHINE_ARN]
    started = []
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        started.append({"name": execution["name"], "input": json.loads(described["input"])})
    return started


def printable(answer: Any) -> Any:
    """An HTTP answer's JSON body parsed, so the printout reads as JSON, not a string in JSON."""
    if isinstance(answer, dict) and isinstance(answer.get("body"), str):
        try:
            return {**answer, "body": json.loads(answer["body"])}
        except json.JSONDecodeError:
            return answer
    return answer
