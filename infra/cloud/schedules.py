"""The `Schedules` construct: the schedules, triggers, priorities and hourly cleanup.

* An EventBridge Scheduler group for Tether's schedules (one-time `at(...)` jobs and recurring
  schedules, written by the HTTP function at runtime) and the execution role Scheduler assumes,
  allowed to invoke the launcher and nothing else.
* The launcher Lambda (`functions.launcher.handler`), the one target of every schedule and of
  the import rule.
* The rule that hands the import bucket's `Object Created` under `imports/` to the launcher
  (which reads the tenant from `imports/{tenantId}/...`); the bucket itself is stateful and
  lives in the stateful stack (`infra.cloud.imports`).
* The cleanup Lambda (`functions.cleanup.handler`) on an EventBridge rule `rate(1 hour)`.
* The launch dead-letter queue: every launch that was given up on lands there instead of
  vanishing, whichever way it failed: Scheduler could not invoke the launcher (each schedule's
  target names the queue; the app writes it from `TETHER_SCHEDULER_DLQ_ARN`), the import rule
  could not, or the launcher itself failed every try of an asynchronous invocation (the
  function's own DLQ). Every path has an explicit retry policy first; a launch is idempotent,
  so retries and a redrive never start a job twice. `Observability` alarms on its depth.
* The grants the rest of the stack needs for all this: the HTTP function may create, update and
  delete schedules in the group only, and pass the execution role to Scheduler only; Finalize
  gives a run slot back and starts the next waiting job; Prepare, ProcessBatch and Finalize read
  objects under `imports/` of the import bucket (GetObject on that prefix only, nothing else in
  S3): Finalize reads a csv_import's object again for the first row errors of its result.
  The HTTP function and the launcher get the bucket's name: a csv_import job may name only
  its own tenant's `imports/{tenantId}/` there.

Every function reads the same per-tenant cap (`TETHER_MAX_RUNNING_PER_TENANT`), so HTTP, the
launcher, Finalize and the cleanup agree on it.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    CfnElement,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.cloud.job_runner import JobRunner
from infra.cloud.lambda_function import acknowledge_index_access, nag_arn, tether_function
from infra.cloud.packaging import LambdaPackaging
from infra.cloud.queues import dead_letter_queue
from infra.cloud.secrets import Secrets, grant_key_read
from infra.cloud.storage import Storage
from shared import constants as c
from shared.adapters.dynamo_maintenance import QUEUE_INDEX
from shared.runner.definition import FINALIZE, PREPARE, PROCESS

LAUNCHER_HANDLER: Final = "functions.launcher.handler"
# Explicit retries before a launch is dead-lettered (a launch is idempotent: retrying is safe).
IMPORT_RULE_RETRY_ATTEMPTS: Final = 4
LAUNCHER_ASYNC_RETRY_ATTEMPTS: Final = 2
LAUNCH_MAX_EVENT_AGE: Final = Duration.seconds(c.SCHEDULER_MAX_EVENT_AGE_SECONDS)
CLEANUP_HANDLER: Final = "functions.cleanup.handler"
# What each function reads and writes. The launcher creates jobs (and their first message),
# records runs on schedules and takes run slots; the cleanup purges jobs with their messages,
# connections and devices, and reconciles slots.
LAUNCHER_TABLES: Final = ("jobs", "messages", "limits", "schedules")
CLEANUP_TABLES: Final = ("jobs", "messages", "connections", "devices", "limits")
SCHEDULER_ACTIONS: Final = (
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
)
# What this construct hands the HTTP function's construct for its environment (Finalize's
# part is the JobRunner's own).
HTTP_ENVIRONMENT_KEYS: Final = (
    c.ENV_IMPORT_BUCKET,
    c.ENV_SCHEDULER_GROUP,
    c.ENV_SCHEDULER_ROLE_ARN,
    c.ENV_LAUNCHER_ARN,
    c.ENV_SCHEDULER_DLQ_ARN,
    c.ENV_MAX_RUNNING_PER_TENANT,
)


# The tasks that read a csv_import's object: count its rows, process them, and (Finalize)
# read it again for the first row errors of the job's result.
IMPORT_READERS: Final = (PREPARE, PROCESS, FINALIZE)


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        packaging: LambdaPackaging,
        secrets: Secrets,
        job_runner: JobRunner,
        imports: s3.IBucket,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        max_running_per_tenant = job_runner.max_running_per_tenant
        self._max_running = max_running_per_tenant
        self._storage = storage
        self._state_machine_arn = job_runner.state_machine_arn
        # Named (not generated) so the IAM resource pattern and the settings can spell it.
        self.group_name = f"{stack.stack_name}-schedules"
        self.group = scheduler.ScheduleGroup(self, "Group", schedule_group_name=self.group_name)
        self.imports = imports
        self._common_environment = {
            c.ENV_IMPORT_BUCKET: imports.bucket_name,
            c.ENV_CURSOR_SECRET_ARN: secrets.cursor_secret.secret_arn,
            c.ENV_STATE_MACHINE_ARN: job_runner.state_machine_arn,
            c.ENV_MAX_RUNNING_PER_TENANT: str(max_running_per_tenant),
            c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
            c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
        }
        self.launch_failures = self._dead_letter_queue(removal_policy)
        self.launcher = self._function(
            "LauncherFunction",
            LAUNCHER_HANDLER,
            "Tether launcher: starts scheduled, periodic and S3-triggered jobs",
            LAUNCHER_TABLES,
            packaging=packaging,
            timeout=Duration.seconds(30),
            removal_policy=removal_policy,
            log_retention=log_retention,
            dead_letter_queue=self.launch_failures,
        )
        self.launcher.configure_async_invoke(
            retry_attempts=LAUNCHER_ASYNC_RETRY_ATTEMPTS, max_event_age=LAUNCH_MAX_EVENT_AGE
        )
        self.cleanup = self._function(
            "CleanupFunction",
            CLEANUP_HANDLER,
            "Tether hourly cleanup: purge expired, fail dead executions, reconcile run slots",
            CLEANUP_TABLES,
            packaging=packaging,
            # The cleanup's lease lasts as long as the function may run.
            timeout=Duration.seconds(c.CLEANUP_LEASE_SECONDS),
            removal_policy=removal_policy,
            log_retention=log_retention,
        )
        for function in (self.launcher, self.cleanup):
            grant_key_read(secrets.cursor_secret, function)
            function.add_to_role_policy(self._start_executions())
        self.cleanup.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[self._executions_arn(job_runner)],
            )
        )

        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Tether schedules: EventBridge Scheduler invokes the launcher, only",
        )
        self.launcher.grant_invoke(self.role)
        # Scheduler sends what it gave up on with the role it invokes with (SendMessage only:
        # SQS-managed encryption needs no key grant).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.launch_failures.queue_arn]
            )
        )
        self._import_rule()
        self.cleanup_rule = events.Rule(
            self,
            "CleanupRule",
            description="Tether hourly cleanup",
            schedule=events.Schedule.rate(Duration.hours(1)),
            targets=[targets.LambdaFunction(self.cleanup, retry_attempts=2)],
        )
        # What the "When an alarm fires" runbook (docs/operations.md) needs to inspect and redrive.
        CfnOutput(
            stack,
            "LaunchDlqUrl",
            value=self.launch_failures.queue_url,
            description="Launches given up on (Scheduler, import rule, launcher): redrive them",
        )
        CfnOutput(
            stack,
            "LauncherFunctionName",
            value=self.launcher.function_name,
            description="The launcher Lambda, which a redrive of the launch DLQ invokes",
        )
        self._let_runner_admit(job_runner)
        self._acknowledge_findings(job_runner)

    # -- functions --------------------------------------------------------------------------

    def _function(
        self,
        construct_id: str,
        handler: str,
        description: str,
        table_keys: tuple[str, ...],
        *,
        packaging: LambdaPackaging,
        timeout: Duration,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        function = tether_function(
            self,
            construct_id,
            handler=handler,
            description=description,
            packaging=packaging,
            environment={
                **self._storage.function_environment(*table_keys),
                **self._common_environment,
            },
            memory_size=512,
            timeout=timeout,
            removal_policy=removal_policy,
            log_retention=log_retention,
            dead_letter_queue=dead_letter_queue,
        )
        for key in table_keys:
            self._storage.tables[key].grant_read_write_data(function)
        assert function.role is not None
        acknowledge_index_access(
            function.role,
            self._storage,
            {
                key: f"The {key} table's own GSIs: the run queue (jobs `queue`) and, for "
                "purges, the job and connection indexes the store queries; no other table's."
                for key in table_keys
                if self._storage_has_indexes(key)
            },
        )
        return function

    def _dead_letter_queue(self, removal_policy: RemovalPolicy) -> sqs.Queue:
        # Two weeks to notice, fix the cause and redrive (docs/operations.md).
        return dead_letter_queue(
            self,
            "LaunchFailures",
            removal_policy=removal_policy,
            why_no_dlq="This queue is itself the launcher's dead-letter queue (Scheduler "
            "targets, the import rule, the function's failed async invocations); nothing "
            "consumes it but an operator's redrive, so a DLQ of it would hold nothing.",
        )

    def _storage_has_indexes(self, key: str) -> bool:
        return key in {"jobs", "connections"}

    def _start_executions(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["states:StartExecution"], resources=[self._state_machine_arn]
        )

    def _executions_arn(self, job_runner: JobRunner) -> str:
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{job_runner.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    # -- imports ----------------------------------------------------------------------------

    def _import_rule(self) -> None:
        self.import_rule = events.Rule(
            self,
            "ImportRule",
            description="Tether triggered jobs: a CSV under imports/{tenantId}/ starts csv_import",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.imports.bucket_name]},
                    "object": {"key": [{"prefix": c.IMPORTS_PREFIX}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.launcher,
                    retry_attempts=IMPORT_RULE_RETRY_ATTEMPTS,
                    max_event_age=LAUNCH_MAX_EVENT_AGE,
                    dead_letter_queue=self.launch_failures,
                )
            ],
        )

    # -- grants to the rest of the stack ----------------------------------------------------

    def _schedule_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.group_name}/*",
        )

    def http_environment(self) -> dict[str, str]:
        """What the HTTP function needs to schedule jobs and start imports (its own construct
        sets it: `HttpApi`)."""
        return {
            c.ENV_IMPORT_BUCKET: self.imports.bucket_name,
            c.ENV_SCHEDULER_GROUP: self.group.schedule_group_name,
            c.ENV_SCHEDULER_ROLE_ARN: self.role.role_arn,
            c.ENV_LAUNCHER_ARN: self.launcher.function_arn,
            c.ENV_SCHEDULER_DLQ_ARN: self.launch_failures.queue_arn,
            c.ENV_MAX_RUNNING_PER_TENANT: str(self._max_running),
        }

    def let_schedule(self, function: lambda_.Function) -> None:
        """The HTTP `function` may manage this group's schedules and pass them their role."""
        self._storage.tables["schedules"].grant_read_write_data(function)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(SCHEDULER_ACTIONS), resources=[self._schedule_arn()])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        assert function.role is not None
        Validations.of(function.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:"
                f"<AWS::Region>:<AWS::AccountId>:schedule/{self.group_name}/*]",
                reason="Schedules are created at runtime (one per job for later and per "
                "recurring schedule); the HTTP function reaches this group's schedules only.",
            )
        )

    def _let_runner_admit(self, job_runner: JobRunner) -> None:
        """Finalize frees a slot and launches the next waiting job (its environment names the
        limits table and the cap: `JobRunner`); imports are read by the tasks that count and
        process a csv_import."""
        finalize = job_runner.functions[FINALIZE]
        limits = self._storage.tables["limits"]
        jobs = self._storage.tables["jobs"]
        finalize.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[limits.table_arn])
        )
        finalize.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{jobs.table_arn}/index/{QUEUE_INDEX}"]
            )
        )
        finalize.add_to_role_policy(self._start_executions())
        for step in IMPORT_READERS:
            job_runner.functions[step].add_to_role_policy(self._read_imports())

    def _read_imports(self) -> iam.PolicyStatement:
        """Object reads under `imports/` only: not the bucket's other keys, no listing, no
        other bucket (a List grant would also tell a reader which keys exist)."""
        return iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[self.imports.arn_for_objects(f"{c.IMPORTS_PREFIX}*")],
        )

    def _acknowledge_findings(self, job_runner: JobRunner) -> None:
        stack = Stack.of(self)
        child = self.launcher.node.default_child
        assert isinstance(child, CfnElement)
        launcher_id = stack.get_logical_id(child)
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{launcher_id}.Arn>:*]",
                reason="`ARN:*` is the launcher's versions and aliases (added by grant_invoke); "
                "Scheduler may invoke no other function.",
            )
        )
        assert self.cleanup.role is not None
        Validations.of(self.cleanup.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:"
                f"<AWS::Region>:<AWS::AccountId>:execution:{job_runner.state_machine_name}:*]",
                reason="DescribeExecution on the executions of Tether's own JobRunner (their "
                "names are job ids), to fail jobs whose execution died.",
            )
        )
        for step in IMPORT_READERS:
            role = job_runner.functions[step].role
            assert role is not None
            bucket = nag_arn(role, self.imports, self.imports.bucket_arn)
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{bucket}/{c.IMPORTS_PREFIX}*]",
                    reason="GetObject on the uploads under imports/ of the import bucket, which "
                    "csv_import jobs read; every tenant's prefix, since one function serves all "
                    "tenants (the API refuses a key outside the caller's own imports/{tenantId}/).",
                )
            )
