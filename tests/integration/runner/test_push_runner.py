"""Push on completion, in whole JobRunner executions under moto (docs/architecture.md, Push).

The shared definition runs on moto's Step Functions interpreter with every task (Notify
included) calling the real handler in process; devices are registered through the real use
case on moto's SNS, acks go through the real WebSocket session, and what would have reached
APNs and FCM is read back with the local push sink.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions import runner as runner_handlers
from infra.local import stepfunctions as local_sfn
from infra.local.push_sink import PushSink, create_platform_applications, platform_environment
from shared import constants as c
from shared.adapters.dynamo_connections import DynamoConnectionStore
from shared.adapters.sns_push import SnsPushGateway
from shared.domain.auth import Principal, Scope
from shared.domain.clock import ManualClock
from shared.domain.models import JobRecord, JobRequest, Platform, PushOutcome
from shared.domain.push import DeviceRegistration
from shared.push_wiring import devices, push_notifier
from shared.runner.state import execution_name
from shared.runner_wiring import RunnerContext
from shared.services.jobs import JobRef, JobService
from shared.services.push import Devices, PushNotifier
from shared.services.runner import JobRunner
from shared.services.websocket import WebSocketSession
from shared.settings import TetherSettings
from shared.tables import TABLES
from tests.integration.runner.harness import LateExecutions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TENANT, OWNER = "acme", "u1"
GRACE = 9
ENDED = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
TOKENS = {
    Platform.IOS: "a1" * 32,
    Platform.IOS_SANDBOX: "c3" * 32,
    Platform.ANDROID: "fcm:APA91b" + "z" * 140,
}
Hook = Callable[[dict[str, Any], dict[str, Any]], object]


@dataclass
class World:
    service: JobService
    runner: JobRunner
    devices: Devices
    notifier: PushNotifier
    session: WebSocketSession
    sfn: Any
    sns: Any
    sink: PushSink
    after_finalize: list[Hook] = field(default_factory=list)

    def user(self, tenant: str = TENANT, subject: str = OWNER) -> Principal:
        return Principal(tenant_id=tenant, subject=subject, scopes=frozenset(Scope))

    def register(self, platform: Platform, token: str | None = None, **who: str) -> str:
        registration = {"platform": platform.value, "token": token or TOKENS[platform]}
        done = self.devices.register(
            self.user(**who), DeviceRegistration.model_validate(registration)
        )
        return done.device.device_id

    def endpoint_of(self, device_id: str, **who: str) -> str:
        principal = self.user(**who)
        device = self.devices.store.get(principal.tenant_id, principal.subject, device_id)
        assert device is not None
        return device.endpoint_arn

    def run(self, params: dict[str, Any] | None = None, **request: Any) -> tuple[JobRecord, str]:
        job = self.service.create_job(
            JobRequest(type="demo", params=params or {"items": 150}, **request),
            tenant_id=TENANT,
            owner_id=OWNER,
        )
        ref = JobRef(TENANT, job.job_id)
        arn = self.runner.start_execution(ref, execution_name(job.job_id))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] in ENDED:
                assert execution["status"] == "SUCCEEDED", execution
                return self.service.get(ref), arn
            time.sleep(0.01)
        raise AssertionError(f"execution {arn} still running")

    def states_entered(self, arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in events
            if event["type"].endswith("StateEntered")
        ]

    def ack_the_end(self, event: dict[str, Any], _answer: dict[str, Any]) -> None:
        """What a live client does on the terminal status message: ack it over its socket."""
        job = self.service.get(JobRef(event["tenantId"], event["jobId"]))
        self.session.connect("conn-1", self.user())
        frame = json.dumps({"action": "ack", "jobId": job.job_id, "seq": job.seq})
        assert self.session.receive("conn-1", frame) == []


@pytest.fixture
def world(
    dynamodb: DynamoDBClient,
    table_names: dict[str, str],
    service: JobService,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    environment = {spec.env_var: table_names[spec.key] for spec in TABLES}
    environment[c.ENV_CURSOR_SECRET] = "cursor-secret-for-tests-0123456789"
    environment.update(platform_environment(create_platform_applications(sns)))
    settings = TetherSettings.model_validate(environment)
    executions = LateExecutions(sfn)
    runner = JobRunner(service, clock=clock, executions=executions, batch_size=100)
    notifier = push_notifier(settings, service, client=dynamodb, sns=sns, clock=clock)
    context = RunnerContext(runner=runner, notifier=notifier, push_grace_seconds=GRACE)
    monkeypatch.setattr(runner_handlers, "context", lambda: context)
    built = World(
        service=service,
        runner=runner,
        devices=devices(settings, client=dynamodb, sns=sns, clock=clock),
        notifier=notifier,
        session=WebSocketSession(
            jobs=service,
            connections=DynamoConnectionStore(dynamodb, settings.connections_table),
            clock=clock,
            runner=runner,
        ),
        sfn=sfn,
        sns=sns,
        sink=PushSink(),
    )

    def finalize(event: dict[str, Any], lambda_context: Any) -> Any:
        answer = runner_handlers.finalize(event, lambda_context)
        for hook in list(built.after_finalize):
            hook(event, answer)
        return answer

    executions.deploy({**local_sfn.runner_handlers(), "finalize": finalize})
    return built


def _outcomes(job: JobRecord) -> dict[str, str]:
    return {attempt.device_id: attempt.outcome.value for attempt in job.push_attempts}


def test_without_an_ack_each_enabled_device_gets_one_push_of_its_variant(world: World) -> None:
    # Given u1's iPhone, a development build (APNs sandbox) and an Android phone, plus a
    # colleague's phone and another tenant's u1's phone
    mine = {platform: world.register(platform) for platform in Platform}
    world.register(Platform.IOS, "d4" * 32, subject="u2")
    world.register(Platform.ANDROID, "fcm:other-tenant" + "y" * 100, tenant="globex")

    # When a job of u1 completes and nobody acknowledges its end live
    job, arn = world.run({"items": 150})

    # Then after the grace period each of u1's devices got exactly one push
    assert job.status.value == "completed"
    assert world.states_entered(arn)[-4:] == ["PushDecision", "PushGrace", "Notify", "Done"]
    assert local_sfn.requested_waits() == [GRACE]
    deliveries = world.sink.deliveries()
    assert len(deliveries) == 3
    by_endpoint = {delivery.endpoint_arn: delivery for delivery in deliveries}
    for platform, device_id in mine.items():
        delivery = by_endpoint[world.endpoint_of(device_id)]
        # And each in its platform's variant, on its platform's application
        assert delivery.platform is platform
        assert delivery.job_id == job.job_id
        assert delivery.alert == {"title": "Demo finished", "body": "150 done"}
    ios = by_endpoint[world.endpoint_of(mine[Platform.IOS])].payload
    assert ios["aps"]["category"] == "JOB_COMPLETED"
    assert ios["aps"]["thread-id"] == job.job_id
    android = by_endpoint[world.endpoint_of(mine[Platform.ANDROID])].payload
    assert android["fcmV1Message"]["message"]["android"]["collapse_key"] == job.job_id
    # And every attempt is recorded on the job, the log still ends with the terminal status
    assert _outcomes(job) == {device_id: "sent" for device_id in mine.values()}
    assert all(attempt.message_id for attempt in job.push_attempts)
    assert job.notified_at is not None
    log = world.service.messages_after(JobRef(TENANT, job.job_id), 0).messages
    assert log[-1].seq == job.seq
    assert log[-1].data["status"] == "completed"
    # And the sink logs each delivery once
    assert len(world.sink.poll()) == 3
    assert world.sink.poll() == []


def test_an_ack_within_the_grace_period_means_no_push(world: World) -> None:
    # Given u1's phone, and a live client that acks the terminal message during the grace
    device = world.register(Platform.IOS)
    world.after_finalize.append(world.ack_the_end)

    # When the job completes
    job, arn = world.run()

    # Then nothing was published, and the attempt says why
    assert "Notify" in world.states_entered(arn)
    assert world.sink.deliveries() == []
    assert _outcomes(job) == {device: "skipped_seen"}


def test_an_ack_of_progress_only_does_not_count_as_seen(world: World) -> None:
    # Given a client that acked the job's progress but was gone before the end
    device = world.register(Platform.ANDROID)

    def ack_before_the_end(event: dict[str, Any], answer: dict[str, Any]) -> None:
        job = world.service.get(JobRef(event["tenantId"], event["jobId"]))
        world.session.connect("conn-1", world.user())
        frame = json.dumps({"action": "ack", "jobId": job.job_id, "seq": job.seq - 1})
        world.session.receive("conn-1", frame)

    world.after_finalize.append(ack_before_the_end)

    # When the job completes / Then the push goes out
    job, _ = world.run()
    assert _outcomes(job) == {device: "sent"}
    assert len(world.sink.for_job(job.job_id)) == 1


def test_a_disabled_endpoint_is_skipped_and_marked(world: World) -> None:
    # Given two devices, one of which SNS disabled (APNs rejected its token)
    good = world.register(Platform.IOS)
    bad = world.register(Platform.ANDROID)
    world.sns.set_endpoint_attributes(
        EndpointArn=world.endpoint_of(bad), Attributes={"Enabled": "false"}
    )

    # When a job completes
    first, _ = world.run()

    # Then the good device got its push, the disabled one was skipped and marked
    assert _outcomes(first) == {good: "sent", bad: "skipped_disabled"}
    stored = world.devices.store.get(TENANT, OWNER, bad)
    assert stored is not None
    assert stored.enabled is False
    skipped = next(a for a in first.push_attempts if a.device_id == bad)
    assert skipped.error is not None
    assert skipped.error.code == "endpoint_disabled"

    # And from then on it is skipped without asking SNS, until it registers again
    second, _ = world.run()
    assert _outcomes(second) == {good: "sent", bad: "skipped_disabled"}
    assert len(world.sink.deliveries()) == 2  # the good device's two pushes
    world.register(Platform.ANDROID)
    third, _ = world.run()
    assert _outcomes(third) == {good: "sent", bad: "sent"}


def test_policy_always_pushes_even_when_seen_and_never_skips_notify(world: World) -> None:
    # Given a device and a client that acks every end live
    device = world.register(Platform.IOS_SANDBOX)
    world.after_finalize.append(world.ack_the_end)

    # When a job with policy `always` completes / Then it pushes anyway
    always, _ = world.run(push="always")
    assert always.push.value == "always"
    assert _outcomes(always) == {device: "sent"}

    # When a job with policy `never` completes / Then Notify does not even run
    local_sfn.clear_waits()
    never, arn = world.run(push="never")
    assert world.states_entered(arn)[-3:] == ["Finalize", "PushDecision", "Done"]
    assert never.push_attempts == []
    assert never.notified_at is None
    assert local_sfn.requested_waits() == []
    assert len(world.sink.deliveries()) == 1


def test_a_failed_job_pushes_the_failure_variant(world: World) -> None:
    # Given a device / When a job fails on a permanent error
    world.register(Platform.IOS)
    job, _ = world.run({"items": 300, "permanentFailures": [150]})

    # Then the push says it failed, with the counters and the reason
    assert job.status.value == "failed"
    (delivery,) = world.sink.for_job(job.job_id)
    aps = delivery.payload["aps"]
    assert aps["category"] == "JOB_FAILED"
    assert aps["alert"]["title"] == "Demo failed"
    assert aps["alert"]["body"].startswith("100 done. ")
    assert job.error is not None
    assert job.error.message in aps["alert"]["body"]


def test_one_endpoints_error_neither_fails_the_job_nor_stops_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two devices, and SNS throttling every publish to the first one
    broken = world.register(Platform.IOS)
    fine = world.register(Platform.ANDROID)
    broken_arn = world.endpoint_of(broken)
    publish = SnsPushGateway.publish

    def flaky(self: SnsPushGateway, arn: str, message: str, attributes: dict[str, str]) -> str:
        if arn == broken_arn:
            error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
            raise ClientError(error, "Publish")  # type: ignore[arg-type]
        return publish(self, arn, message, attributes)

    monkeypatch.setattr(SnsPushGateway, "publish", flaky)

    # When a job completes
    job, _ = world.run()

    # Then the job completed, the other device got its push, the error is recorded
    assert job.status.value == "completed"
    assert _outcomes(job) == {broken: "error", fine: "sent"}
    error = next(a for a in job.push_attempts if a.outcome is PushOutcome.ERROR).error
    assert error is not None
    assert error.code == "Throttling"


def test_a_crashing_notify_never_changes_how_the_job_ended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Notify task that crashes outright (say the devices table is unreachable)
    world.register(Platform.IOS)

    def crash(self: PushNotifier, ref: JobRef) -> None:
        raise RuntimeError("devices table unreachable")

    monkeypatch.setattr(PushNotifier, "notify", crash)

    # When a job completes / Then the execution still succeeds and the job stays completed
    job, arn = world.run()
    assert job.status.value == "completed"
    assert world.states_entered(arn)[-2:] == ["Notify", "Done"]
    assert job.push_attempts == []
    assert world.sink.deliveries() == []


def test_a_token_taken_over_by_another_tenant_is_never_pushed_for_the_old_owner(
    world: World,
) -> None:
    # Given u1's iPhone, whose token is then registered by another tenant's user (the phone
    # changed hands: SNS keeps one endpoint per token, now carrying the new owner)
    mine = world.register(Platform.IOS)
    theirs = world.register(Platform.IOS, tenant="globex", subject="u9")
    assert world.endpoint_of(theirs, tenant="globex", subject="u9") == world.endpoint_of(mine)

    # When a job of u1 completes
    job, _ = world.run()

    # Then nothing reaches the phone for u1: the device is marked and skipped
    assert _outcomes(job) == {mine: "skipped_disabled"}
    (attempt,) = job.push_attempts
    assert attempt.error is not None
    assert "another user" in attempt.error.message
    assert world.sink.deliveries() == []
    # And when u1 removes the device, the endpoint (now the other tenant's) stays
    world.devices.delete(world.user(), mine)
    assert world.devices.gateway.endpoint(world.endpoint_of(theirs, tenant="globex", subject="u9"))
