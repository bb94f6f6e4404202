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
* `${MESSAGES_TABLE}`: the messages table, whose stream the dispatcher reads (in the
  `eventSourceARN` of a stream record).

The launcher (EventBridge Scheduler's input, or S3's `Object Created` from the import rule) and
the cleanup (the hourly rule's `Scheduled Event`) replay the same way. The JobRunner's task
steps receive Step Functions state, not an AWS event, and overlap in shape (ProcessBatch and
Finalize both take the whole `RunState`): a sample named `runner_<step>.json` goes to that
step's handler. The JobRunner state machine exists (the shared definition), but its executions
do not run in a replay: launched jobs stay `queued`, and the executions a handler started are
listed instead. What a handler pushed (the Notify task) is read back with the local push sink.

Every file gets an answer: a file that is not JSON, or an event no Tether function is wired to
(an SNS notification), is reported as not replayed and the next file runs; errors a handler
logged with a traceback are collected, since a bad event must be refused with its reason.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.loaders import Loader, create_loader
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


class Unroutable(ValueError):
    """An event no Tether function is wired to receive: reported, never invoked."""


@dataclass(frozen=True)
class Replayed:
    path: Path
    handler: str | None  # None: not replayed (see `not_replayed`)
    answer: Any
    posted: dict[str, list[Any]] = field(default_factory=dict)  # frames sent to @connections
    pushed: list[dict[str, Any]] = field(default_factory=list)  # what APNs/FCM would get
    started: list[dict[str, Any]] = field(default_factory=list)  # JobRunner executions started
    tracebacks: list[str] = field(default_factory=list)  # errors the handler logged with one
    not_replayed: str | None = None  # why the file reached no handler

    @property
    def ok(self) -> bool:
        """Handled, or refused as AWS would show it; not: a crash, a 5xx, or no handler."""
        return self.outcome.startswith(("handled", "refused"))

    @property
    def outcome(self) -> str:
        """One line: handled, refused (and how the caller sees it), failed, or not replayed."""
        if self.not_replayed is not None:
            return f"not replayed: {self.not_replayed}"
        answer = self.answer if isinstance(self.answer, dict) else {}
        if "errorType" in answer:
            if self.handler == "authorizer" and answer.get("errorMessage") == "Unauthorized":
                return "refused: Unauthorized (API Gateway answers 401)"
            return f"failed: {answer['errorType']}: {answer.get('errorMessage')}"
        if self.tracebacks:
            return f"failed: the handler logged a traceback ({self.tracebacks[0]})"
        return _answered(answer)


def _answered(answer: dict[str, Any]) -> str:
    status = answer.get("statusCode", 200)
    if not isinstance(status, int) or status >= 500:
        return f"failed: status {status}"
    if status >= 400:
        return f"refused: status {status}"
    if failures := answer.get("batchItemFailures"):
        return f"refused: {len(failures)} record(s) reported failed, for the stream to retry"
    if answer.get("launched") is False:
        return f"refused: nothing launched ({answer.get('reason', 'nothing due')})"
    return "handled"


RUNNER_SAMPLE_PREFIX = "runner_"


def handler_for(event: dict[str, Any], file_name: str | None = None) -> tuple[str, Handler]:
    """Which Lambda this event is for: a `runner_<step>.json` sample by its name, else by shape."""
    stem = Path(file_name).stem if file_name else ""
    step = stem.removeprefix(RUNNER_SAMPLE_PREFIX) if stem.startswith(RUNNER_SAMPLE_PREFIX) else ""
    steps = local_sfn.runner_handlers()
    if step in steps:
        return step, steps[step]
    records = event.get("Records") or [{}]
    # Scheduler targets only the launcher; the hourly rule's `Scheduled Event` (source
    # aws.events) only the cleanup; the import rule passes S3's `Object Created` only.
    if event.get("kind") in {"job", "schedule"} or event.get("source") == "aws.scheduler":
        return "launcher", launcher.handler
    if event.get("detail-type") == "Object Created":
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
    raise Unroutable(_unroutable(event, records[0]))


def _unroutable(event: dict[str, Any], record: dict[str, Any]) -> str:
    source = record.get("EventSource") or record.get("eventSource") or event.get("source")
    if source:
        return f"no Tether function is wired to {source} events"
    return "not an event Tether has a handler for (no function of the template takes it)"


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
            _share_service_models()
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
            placeholders = {**_seed(client), "MESSAGES_TABLE": tables["messages"]}
            yield _World(placeholders, DynamoConnectionStore(client, tables["connections"]))
    finally:
        for cache in handler_caches():
            cache.cache_clear()
        os.environ.clear()
        os.environ.update(saved)


@functools.cache
def _service_models() -> Loader:
    return create_loader()


def _share_service_models() -> None:
    """One botocore loader for every replay: mock_aws gives each a new boto3 session, which
    would otherwise parse the service models and endpoints again (about a second each)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _service_models())
    boto3.setup_default_session(botocore_session=session)


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
    """Replay each file in a fresh local AWS; returns what each handler answered.

    A file that is not JSON, or an event no Tether function is wired to, is reported as not
    replayed and the next file runs: one answer per file, always.
    """
    return [_replay_one(path) for path in paths]


def _replay_one(path: Path) -> Replayed:
    try:
        # Placeholders sit inside JSON strings, so the shape can be read before they are filled.
        name, handler = handler_for(json.loads(path.read_text()), path.name)
    except (OSError, ValueError) as unusable:  # unreadable, not JSON, or Unroutable
        return Replayed(path, None, None, not_replayed=str(unusable))
    with _environment() as world:
        event = json.loads(_fill(path.read_text(), world.placeholders))
        connection = event.get("requestContext", {}).get("connectionId")
        if name == "ws_handler" and event["requestContext"].get("eventType") != "CONNECT":
            owner = Principal(tenant_id=TENANT, subject=USER, scopes=frozenset(Scope))
            world.connections.connect(connection, owner, SystemClock().now())
        with _tracebacks_logged() as tracebacks:
            answer = _invoke(handler, event, LocalLambdaContext(function_name=f"tether-{name}"))
        pushed = [delivery.summary() for delivery in PushSink().deliveries()]
        return Replayed(
            path,
            name,
            answer,
            _posted_frames(),
            pushed,
            _started_executions(),
            tracebacks=tracebacks,
        )


class _TracebackCollector(logging.Handler):
    """Keeps the message of every record logged with an exception's traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.messages.append(record.getMessage())


@contextmanager
def _tracebacks_logged() -> Iterator[list[str]]:
    """What the handlers logged with a traceback (every Tether logger is the service's)."""
    collector = _TracebackCollector()
    logger = logging.getLogger(c.SERVICE_NAME)
    logger.addHandler(collector)
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)


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
