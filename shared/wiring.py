"""Builds the services from settings: the one place that picks concrete adapters.

Handlers call these factories at cold start; tests call them with moto's endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from pydantic import SecretStr

from shared.adapters.connections_api import ApiGatewayPoster, management_api_client
from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.dynamo_jobs import DynamoJobStore, TableNames
from shared.adapters.dynamo_limits import DynamoRateLimiter, DynamoRunSlots
from shared.adapters.dynamo_maintenance import DynamoRunQueue
from shared.adapters.idempotency import IdempotentCreate
from shared.adapters.scheduler import EventBridgeScheduler
from shared.adapters.secrets import RotatingSecret
from shared.adapters.stepfunctions import StepFunctionsExecutions
from shared.auth_settings import AuthSettings, authenticator_from
from shared.domain.clock import Clock, IdFactory, RandomIds, SystemClock
from shared.domain.keys import FixedKeys, KeySource
from shared.domain.models import JobRequest
from shared.jobs.registry import JobCatalog
from shared.services.admission import Admission
from shared.services.api import JobsApi
from shared.services.auth import Authenticator
from shared.services.jobs import JobService
from shared.services.ports import ConnectionPoster, ExecutionGateway, SchedulerGateway
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession
from shared.settings import TetherSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Standard retry mode retries throttling and transient errors with backoff (botocore's own);
# total_max_attempts counts the first request too (max_attempts would mean 5 retries).
AWS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})
# Scheduler targets where no CDK app set them (the local stack, the tests): moto checks neither.
LOCAL_LAUNCHER_ARN = "arn:aws:lambda:us-east-1:000000000000:function:tether-launcher"
LOCAL_SCHEDULER_ROLE_ARN = "arn:aws:iam::000000000000:role/tether-scheduler"


def dynamodb_client(settings: TetherSettings) -> DynamoDBClient:
    return boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG)


def step_functions_executions(settings: TetherSettings) -> ExecutionGateway | None:
    """The gateway to the JobRunner's executions; None when no state machine is configured."""
    if settings.state_machine_arn is None:
        return None
    client = boto3.client(
        "stepfunctions", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG
    )
    return StepFunctionsExecutions(client, settings.state_machine_arn)


def job_runner(
    settings: TetherSettings,
    jobs: JobService,
    clock: Clock,
    client: DynamoDBClient | None = None,
) -> JobRunner | None:
    """The runner the HTTP API launches and controls jobs with; None without a state machine."""
    executions = step_functions_executions(settings)
    if executions is None:
        return None
    return JobRunner(
        jobs,
        clock=clock,
        executions=executions,
        batch_size=settings.batch_size,
        batches_per_execution=settings.batches_per_execution,
        admission=admission(settings, jobs, client),
    )


def admission(
    settings: TetherSettings, jobs: JobService, client: DynamoDBClient | None = None
) -> Admission | None:
    """Per-tenant run slots and the priority queue; None without a limits table."""
    if not settings.limits_table:
        return None
    client = client or dynamodb_client(settings)
    return Admission(
        jobs,
        DynamoRunSlots(client, settings.limits_table),
        DynamoRunQueue(client, settings.jobs_table),
        max_running=settings.max_running_per_tenant,
    )


def scheduler_gateway(settings: TetherSettings) -> SchedulerGateway:
    """EventBridge Scheduler, Tether's group, every schedule targeting the launcher.

    The CDK app sets the launcher's and the role's ARNs; the local stack and the tests run
    without them (moto checks neither), so placeholders of the right shape stand in.
    """
    client = boto3.client("scheduler", endpoint_url=settings.aws_endpoint_url, config=AWS_CONFIG)
    return EventBridgeScheduler(
        client,
        group=settings.scheduler_group,
        target_arn=settings.launcher_arn or LOCAL_LAUNCHER_ARN,
        role_arn=settings.scheduler_role_arn or LOCAL_SCHEDULER_ROLE_ARN,
        dead_letter_arn=settings.scheduler_dlq_arn,
    )


def load_settings(settings: TetherSettings | None = None) -> TetherSettings:
    """Settings from the environment (secrets are read through `signing_keys`, not here)."""
    return settings or TetherSettings()


def signing_keys(value: SecretStr | None, arn: str | None, clock: Clock) -> KeySource:
    """A signing key set in the environment (fixed), or held in Secrets Manager (`arn`),
    re-read every five minutes so a rotation reaches this warm process."""
    if value is not None:
        return FixedKeys(value.get_secret_value().encode())
    if arn is None:
        raise ValueError("a signing key needs its value or its secret's ARN")
    # boto3 reads AWS_ENDPOINT_URL itself, so the local stack's Secrets Manager is found too.
    client = boto3.client("secretsmanager", config=AWS_CONFIG)
    return RotatingSecret(client, arn, clock=clock)


def cursor_codec(settings: TetherSettings, clock: Clock | None = None) -> CursorCodec:
    keys = signing_keys(settings.cursor_secret, settings.cursor_secret_arn, clock or SystemClock())
    return CursorCodec(keys)


def job_store(
    settings: TetherSettings, client: DynamoDBClient | None = None, clock: Clock | None = None
) -> DynamoJobStore:
    return DynamoJobStore(
        client or dynamodb_client(settings),
        TableNames(jobs=settings.jobs_table, messages=settings.messages_table),
        cursor_codec(settings, clock),
    )


def job_service(
    settings: TetherSettings,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
) -> JobService:
    clock = clock or SystemClock()
    return JobService(
        job_store(settings, client, clock),
        clock=clock,
        ids=ids or RandomIds(),
        progress_min_interval=settings.progress_min_interval,
    )


def load_auth_settings(auth: AuthSettings | None = None) -> AuthSettings:
    """Auth settings from the environment (the resume key is read by `authenticator`)."""
    return auth or AuthSettings()


def authenticator(auth: AuthSettings, clock: Clock) -> Authenticator:
    """The authenticator of an entry point, its resume key re-read as it rotates."""
    keys = signing_keys(auth.resume_signing_key, auth.resume_signing_key_secret_arn, clock)
    return authenticator_from(auth, clock, resume_keys=keys)


@dataclass(frozen=True, slots=True)
class HttpApiContext:
    """What the HTTP handler needs, built once per cold start."""

    settings: TetherSettings
    authenticator: Authenticator
    api: JobsApi
    idempotency: IdempotentCreate


def http_api_context(
    settings: TetherSettings,
    auth: AuthSettings,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    runner: JobRunner | None = None,
) -> HttpApiContext:
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    jobs = (
        runner.jobs
        if runner is not None
        else job_service(settings, client=client, clock=clock, ids=ids)
    )
    runner = runner or job_runner(settings, jobs, clock, client)
    authenticates = authenticator(auth, clock)

    def create(tenant: str, owner: str, body: dict[str, Any]) -> dict[str, Any]:
        job = jobs.create_job(JobRequest.model_validate(body), tenant_id=tenant, owner_id=owner)
        return job.state().model_dump(mode="json")

    idempotency = IdempotentCreate(
        create,
        client=client,
        table=settings.idempotency_table,
        ttl_seconds=settings.idempotency_ttl_seconds,
    )
    api = JobsApi(
        jobs=jobs,
        resume_tokens=authenticates.resume_tokens,
        limiter=DynamoRateLimiter(
            client, settings.limits_table, limit=settings.write_rate_per_minute
        ),
        clock=clock,
        idempotent=idempotency,
        runner=runner,
        scheduler=scheduler_gateway(settings),
        catalog=JobCatalog(import_bucket=settings.import_bucket),
    )
    return HttpApiContext(
        settings=settings, authenticator=authenticates, api=api, idempotency=idempotency
    )


def websocket_context(
    settings: TetherSettings | None = None,
    *,
    client: DynamoDBClient | None = None,
    clock: Clock | None = None,
    poster: ConnectionPoster | None = None,
) -> tuple[WebSocketSession, ConnectionPoster]:
    """The WebSocket handler's session and the poster its replies go through.

    Its runner is the HTTP API's (`job_runner`), so a cancel takes the same path whatever the
    transport; without a state machine there is no execution to let go, and a runner without
    one cancels the job alone.
    """
    settings = load_settings(settings)
    clock = clock or SystemClock()
    client = client or dynamodb_client(settings)
    jobs = job_service(settings, client=client, clock=clock)
    runner = job_runner(settings, jobs, clock, client) or JobRunner(
        jobs, clock=clock, executions=None, batch_size=settings.batch_size
    )
    session = WebSocketSession(
        jobs=jobs,
        connections=DynamoConnectionStore(client, settings.connections_table),
        clock=clock,
        runner=runner,
    )
    if poster is None:
        if settings.websocket_management_url is None:
            raise ValueError("the WebSocket handler needs the @connections endpoint URL")
        poster = ApiGatewayPoster(management_api_client(settings.websocket_management_url))
    return session, poster
