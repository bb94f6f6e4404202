"""The fault suite's world: one moto account per test module with Tether's tables, the JobRunner
deployed on moto's Step Functions interpreter (every task the real handler, wrapped by the fault
plan), admission with run slots, the hourly cleanup, and a ledger of every message the messages
table's stream carried.

Built once per module (`build_world`); each case takes a fresh tenant, so run slots, queues and
fault plans never leak from one case into the next.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from functions import runner as runner_handlers
from infra.local import moto_patches
from infra.local import stepfunctions as local_sfn
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_devices import DynamoDeviceStore
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_limits import DynamoLease, DynamoRunSlots
from shared.adapters.dynamo_maintenance import DynamoRunQueue, DynamoSweeper
from shared.adapters.dynamo_tables import create_tables
from shared.adapters.sns_push import SnsPushGateway
from shared.domain.clock import ManualClock, SequentialIds
from shared.domain.errors import TetherError
from shared.domain.models import JobRecord, JobRequest, JobStatus
from shared.runner.state import execution_name
from shared.runner_wiring import RunnerContext
from shared.services.admission import Admission
from shared.services.cleanup import Cleanup, CleanupReport
from shared.services.jobs import JobRef, JobService
from shared.services.push import PushNotifier
from shared.services.runner import JobRunner
from shared.wiring import AWS_CONFIG
from tests.faults import invariants as inv
from tests.faults.injection import ApiFaults, LambdaFaults, fast_dynamodb_responses, no_sleeps
from tests.integration.runner.harness import LateExecutions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_SIZE: Final = 2
BATCHES_PER_EXECUTION: Final = 2
MAX_RUNNING: Final = 1
ENDED: Final = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
OWNER: Final = "u1"
POLL_SECONDS: Final = 0.02
Hook = Callable[[str, dict[str, Any]], None]


@dataclass
class MessageLedger:
    """Every message the messages table's stream carried, by (job, epoch, seq): a seq written
    twice with different content under one epoch is a reused seq."""

    streams: Any
    stream_arn: str
    seen: dict[tuple[str, str, int], set[str]] = field(default_factory=dict)
    rewrites: list[tuple[str, int, str]] = field(default_factory=list)  # MODIFY/REMOVE records
    _iterators: dict[str, str | None] = field(default_factory=dict)

    def poll(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in shards["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                for record in page["Records"]:
                    self._take(record)
                iterator = page.get("NextShardIterator")
                if not page["Records"]:
                    break
            self._iterators[shard_id] = iterator

    def _take(self, record: dict[str, Any]) -> None:
        keys = record["dynamodb"]["Keys"]
        job_key, seq = keys["jobKey"]["S"], int(keys["seq"]["N"])
        if record["eventName"] != "INSERT":
            self.rewrites.append((job_key, seq, record["eventName"]))
            return
        image = record["dynamodb"]["NewImage"]
        content = json.dumps(image, sort_keys=True)
        self.seen.setdefault((job_key, image["epoch"]["S"], seq), set()).add(content)

    def reused(self, job_id: str) -> list[str]:
        self.poll()
        found = [
            f"seq {seq} of epoch {epoch} written with {len(contents)} different contents"
            for (job_key, epoch, seq), contents in sorted(self.seen.items())
            if job_key.endswith(f"#{job_id}") and len(contents) > 1
        ]
        found += [
            f"message {seq} got a {event} record"
            for job_key, seq, event in self.rewrites
            if job_key.endswith(f"#{job_id}")
        ]
        return found


@dataclass
class World:
    dynamodb: DynamoDBClient
    sfn: Any
    names: dict[str, str]
    clock: ManualClock
    service: JobService
    runner: JobRunner
    slots: DynamoRunSlots
    cleanup: Cleanup
    lambdas: LambdaFaults
    api: ApiFaults
    ledger: MessageLedger
    executions: LateExecutions
    context: RunnerContext | None = None  # what its task handlers use
    state_machine_arn: str = ""
    slept: list[float] = field(default_factory=list)
    hooks: dict[str, list[Hook]] = field(default_factory=dict)  # by job id
    _tenants: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- cases ------------------------------------------------------------------------------

    def tenant(self) -> str:
        return f"t{next(self._tenants)}"

    def create(self, params: dict[str, Any], **request: Any) -> JobRef:
        tenant = self.tenant()
        job = self.service.create_job(
            JobRequest(type="demo", params=params, **request), tenant_id=tenant, owner_id=OWNER
        )
        return JobRef(tenant, job.job_id)

    def on(self, ref: JobRef, hook: Hook) -> None:
        """Call `hook(step, event)` after every task of this job that returned."""
        with self._lock:
            self.hooks.setdefault(ref.job_id, []).append(hook)

    def reset(self) -> None:
        self.lambdas.clear()
        self.api.clear()
        with self._lock:
            self.hooks.clear()

    def hooked(self, step: str, handler: local_sfn.TaskHandler) -> local_sfn.TaskHandler:
        def run(event: dict[str, Any], context: Any) -> Any:
            answer = handler(event, context)
            with self._lock:
                hooks = list(self.hooks.get(str(event.get("jobId")), []))
            for hook in hooks:
                hook(step, event)
            return answer

        return run

    # -- observing --------------------------------------------------------------------------

    def executions_of(self, ref: JobRef, status: str | None = None) -> list[dict[str, Any]]:
        """Every execution started for the job (named after it, whatever the generation)."""
        stem = execution_name(ref.job_id).rsplit("-g", 1)[0]
        query: dict[str, Any] = {"stateMachineArn": self.state_machine_arn}
        if status is not None:
            query["statusFilter"] = status
        pages = self.sfn.get_paginator("list_executions").paginate(**query)
        return [
            execution
            for page in pages
            for execution in page["executions"]
            if execution["name"].startswith(stem)
        ]

    def running(self, ref: JobRef) -> list[str]:
        return [e["executionArn"] for e in self.executions_of(ref, "RUNNING")]

    def settle(self, ref: JobRef, *, resume: bool = True, timeout: float = 20.0) -> JobRecord:
        """Wait until no execution of the job runs; resume it whenever it is parked paused."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.service.get(ref)
            if resume and job.status is JobStatus.PAUSED and job.task_token:
                with contextlib.suppress(TetherError):  # it ended meanwhile (409)
                    self.runner.resume(ref)
                continue
            if not self.running(ref):
                return self.service.get(ref)
            time.sleep(POLL_SECONDS)  # executions run in moto's threads: let them
        raise AssertionError(f"job {ref.job_id} still has running executions after {timeout} s")

    def violations(self, ref: JobRef, *, must_end: bool = True) -> list[str]:
        """Every invariant the job breaks now (tests/faults/invariants.py)."""
        job = self.service.get(ref)
        running = self.running(ref)
        found = [] if job.status in inv.TERMINAL or not must_end else [f"job {job.status}"]
        idle = job.status not in inv.TERMINAL and job.status is not JobStatus.QUEUED
        if not must_end and idle and not running:
            found.append(f"a {job.status.value} job without a running execution")
        found += inv.counter_violations(job)
        found += inv.slot_violations(job, self.slots.holders())
        found += inv.execution_violations(job, running)
        found += inv.log_violations(job, inv.read_log(self.dynamodb, self.names["messages"], ref))
        found += self.ledger.reused(ref.job_id)
        return found

    def sweep(self) -> CleanupReport:
        """The hourly cleanup, an hour later (it ends jobs whose execution died)."""
        self.clock.advance(hours=1, seconds=1)
        return self.cleanup.run("fault-suite")


def _settings_free_context(world: World, dynamodb: DynamoDBClient, sns: Any) -> RunnerContext:
    notifier = PushNotifier(
        jobs=world.service,
        devices=DynamoDeviceStore(dynamodb, world.names["devices"]),
        gateway=SnsPushGateway(sns, {}),
        cursors=DynamoConnectionStore(dynamodb, world.names["connections"]),
        clock=world.clock,
    )
    return RunnerContext(runner=world.runner, notifier=notifier, push_grace_seconds=0)


@contextmanager
def build_world() -> Iterator[World]:
    """A world for one test module (moto, tables and the state machine are made once)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(key, "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        moto_patches.install()
        # waits and retries recorded, not slept; a task timeout fires only when a test says
        local_sfn.install(wait_scale=0.0, task_timeouts=False)
        slept = no_sleeps(patch)
        _fast_interpreter(patch)
        api, lambdas = ApiFaults(), LambdaFaults()
        with (
            mock_aws(config=local_sfn.MOTO_CONFIG),
            api.installed(patch),
            lambdas.timeouts_escape(patch),
        ):
            world = _world(api, lambdas, slept)
            world.context = _settings_free_context(
                world, world.dynamodb, boto3.client("sns", region_name="us-east-1")
            )
            patch.setattr(runner_handlers, "context", lambda: world.context)
            handlers = {
                step: world.lambdas.wrap(step, world.hooked(step, handler))
                for step, handler in local_sfn.runner_handlers().items()
            }
            world.state_machine_arn = world.executions.deploy(handlers)
            yield world


def _fast_interpreter(patch: pytest.MonkeyPatch) -> None:
    """Two test-only savings in moto's interpreter, which otherwise parses the definition (ANTLR)
    for every execution and builds a boto3 client for every Lambda call: parsed programs are
    cached per definition (components keep run state in the execution's environment, not in
    themselves) and the Lambda client is built once per region."""
    parse = functools.lru_cache(maxsize=4)(
        lambda definition: AmazonStateLanguageParser.parse(definition)[0]
    )

    def entrypoint(worker: ExecutionWorker) -> Any:
        return parse(worker._evaluation_details.state_machine_details.definition)

    build = lambda_eval_utils.boto_client_for  # type: ignore[attr-defined]  # moto's own import
    clients = functools.lru_cache(maxsize=4)(
        lambda region, service: build(region=region, service=service)
    )

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        return clients(region, service)

    patch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
    patch.setattr(lambda_eval_utils, "boto_client_for", client_for)
    fast_dynamodb_responses(patch)


def _world(api: ApiFaults, lambdas: LambdaFaults, slept: list[float]) -> World:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=AWS_CONFIG)
    sfn = boto3.client("stepfunctions", region_name="us-east-1", config=AWS_CONFIG)
    names = create_tables(dynamodb, "faults")
    clock = ManualClock()
    store = DynamoJobStore(
        dynamodb, TableNames(jobs=names["jobs"], messages=names["messages"]), CursorCodec(b"f" * 32)
    )
    service = JobService(
        store, clock=clock, ids=SequentialIds(), progress_min_interval=timedelta(0)
    )
    slots = DynamoRunSlots(dynamodb, names["limits"])
    admission = Admission(
        service, slots, DynamoRunQueue(dynamodb, names["jobs"]), max_running=MAX_RUNNING
    )
    executions = LateExecutions(sfn)
    runner = JobRunner(
        service,
        clock=clock,
        executions=executions,
        batch_size=BATCH_SIZE,
        batches_per_execution=BATCHES_PER_EXECUTION,
        admission=admission,
    )
    cleanup = Cleanup(
        runner=runner,
        sweeper=DynamoSweeper(
            dynamodb, jobs=names["jobs"], connections=names["connections"], devices=names["devices"]
        ),
        lease=DynamoLease(dynamodb, names["limits"], "cleanup"),
        executions=executions,
        clock=clock,
        interval=timedelta(hours=1),
    )
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        config=Config(account_id_endpoint_mode="disabled"),
    )
    stream_arn = dynamodb.describe_table(TableName=names["messages"])["Table"]["LatestStreamArn"]
    return World(
        dynamodb=dynamodb,
        sfn=sfn,
        names=names,
        clock=clock,
        service=service,
        runner=runner,
        slots=slots,
        cleanup=cleanup,
        lambdas=lambdas,
        api=api,
        ledger=MessageLedger(streams, stream_arn),
        executions=executions,
        slept=slept,
    )
