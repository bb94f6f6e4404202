"""The `JobRunner` construct: the Step Functions JobRunner and its six task Lambdas.

The state machine's definition is `shared.runner.definition.job_runner_definition`, the one the
local stack hands moto, rendered with `json.dumps` around the functions' ARN tokens: CDK turns
a string with embedded tokens into `Fn::Join`, and ARNs need no JSON escaping, so the deployed
document is that dict byte for byte (tests/infra/test_job_runner.py proves it). One function per
task step (`functions.runner`), all built from the same settings, as the handlers are.

The tasks call their own state machine (ProcessBatch continues a long job in a new execution,
AwaitResume releases a token nobody else will send), while the state machine names the tasks'
ARNs: a `Ref` each way would be a circular dependency. So the state machine gets a fixed name
and the tasks get its ARN built from that name, a string CloudFormation knows before creating
anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
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
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.cloud.checkov import LOG_GROUP_WITHOUT_CMK, acknowledge_checkov
from infra.cloud.lambda_function import ignore_redundant_role_dependency, tether_function
from infra.cloud.packaging import LambdaPackaging
from infra.cloud.push import PushConfig
from infra.cloud.secrets import Secrets, grant_key_read
from infra.cloud.storage import Storage
from shared import constants as c
from shared.runner.definition import (
    AWAIT_RESUME,
    FINALIZE,
    NOTIFY,
    PREPARE,
    PROCESS,
    RECORD_FAILURE,
    TASK_STEPS,
    job_runner_definition,
)

# The job and its message log: every runner transition writes both in one transaction.
TABLE_KEYS: Final = ("jobs", "messages")
# Notify also reads the owner's delivery cursor (connections) and devices, and marks disabled
# ones; no scans, no deletes.
NOTIFY_TABLE_KEYS: Final = ("connections", "devices")
NOTIFY_TABLE_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")

# The item-level read/write actions of `grant_read_write_data`, without its stream and table
# reads, on the two tables only: that grant would add the jobs table's `index/*`, and no task
# queries an index (the list queries are the HTTP API's). Transactions need no action of their
# own.
TABLE_ACTIONS: Final = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)

STATE_MACHINE_NAME_SUFFIX: Final = "JobRunner"
# What Finalize reads beyond the other tasks: it gives back a run slot under the shared cap.
FINALIZE_ENVIRONMENT_KEYS: Final = (c.ENV_LIMITS_TABLE, c.ENV_MAX_RUNNING_PER_TENANT)


@dataclass(frozen=True, slots=True)
class TaskFunctionSpec:
    """How one task step's Lambda is built, and what it may do to its own state machine."""

    construct_id: str
    handler: str
    description: str
    timeout: Duration
    # Step Functions actions the task calls on its own state machine.
    state_machine_actions: tuple[str, ...] = ()


TASK_FUNCTIONS: Final[Mapping[str, TaskFunctionSpec]] = MappingProxyType(
    {
        PREPARE: TaskFunctionSpec(
            "PrepareFunction",
            "functions.runner.prepare",
            "Tether JobRunner Prepare: count the job's items and start it",
            # Counting may read a whole input (csv_import counts the rows of an S3 object).
            Duration.minutes(5),
        ),
        PROCESS: TaskFunctionSpec(
            "ProcessFunction",
            "functions.runner.process",
            "Tether JobRunner ProcessBatch: honour control requests, process one batch",
            # One batch of TETHER_BATCH_SIZE items; far above what a built-in type needs, far
            # below Lambda's 15 minutes.
            Duration.minutes(5),
            # Continue-as-new: after batchesPerExecution batches the job goes on in a new
            # execution (Standard stops at 25,000 history events).
            ("states:StartExecution",),
        ),
        RECORD_FAILURE: TaskFunctionSpec(
            "RecordFailureFunction",
            "functions.runner.record_failure",
            "Tether JobRunner RecordFailure: record the attempt, pick backoff or failure",
            Duration.seconds(30),
        ),
        AWAIT_RESUME: TaskFunctionSpec(
            "AwaitResumeFunction",
            "functions.runner.await_resume",
            "Tether JobRunner AwaitResume: park a paused job's task token",
            Duration.seconds(30),
            # Releases the token itself when the pause was lifted before it was parked.
            ("states:SendTaskSuccess",),
        ),
        FINALIZE: TaskFunctionSpec(
            "FinalizeFunction",
            "functions.runner.finalize",
            "Tether JobRunner Finalize: end the job as decided",
            Duration.seconds(30),
        ),
        NOTIFY: TaskFunctionSpec(
            "NotifyFunction",
            "functions.runner.notify",
            "Tether JobRunner Notify: push a finished job unless a live client saw it",
            # One SNS read and publish per device of the owner; a user has a handful.
            Duration.seconds(60),
        ),
    }
)


def _step_environment(step: str, storage: Storage, push: PushConfig) -> dict[str, str]:
    """What one task reads beyond the job and its log: Finalize gives back a run slot (limits;
    `Schedules` grants the admission it does), Notify reads the owner's cursors and devices
    and publishes to the configured platforms."""
    if step == FINALIZE:
        return storage.function_environment("limits")
    if step == NOTIFY:
        return {**storage.function_environment(*NOTIFY_TABLE_KEYS), **push.environment()}
    return {}


class JobRunner(Construct):
    """The JobRunner state machine (Standard, logged, traced) and one Lambda per task step."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        packaging: LambdaPackaging,
        secrets: Secrets,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        push: PushConfig,
        max_running_per_tenant: int = c.DEFAULT_MAX_RUNNING_PER_TENANT,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Every function reads the same cap (Schedules hands it to the others).
        self.max_running_per_tenant = max_running_per_tenant
        # Fixed (see the module docstring); the stack name makes it unique per stage.
        self.state_machine_name = f"{stack.stack_name}-{STATE_MACHINE_NAME_SUFFIX}"
        self.state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        environment = {
            **storage.function_environment(*TABLE_KEYS),
            c.ENV_CURSOR_SECRET_ARN: secrets.cursor_secret.secret_arn,
            c.ENV_STATE_MACHINE_ARN: self.state_machine_arn,
            c.ENV_BATCH_SIZE: str(c.DEFAULT_BATCH_SIZE),
            c.ENV_BATCHES_PER_EXECUTION: str(c.DEFAULT_BATCHES_PER_EXECUTION),
            # Finalize hands it to the PushGrace wait (docs/architecture.md, Push).
            c.ENV_PUSH_GRACE_SECONDS: str(push.grace_seconds),
            c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
            c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
        }
        table_arns = [storage.tables[key].table_arn for key in TABLE_KEYS]
        self._functions: dict[str, lambda_.Function] = {}
        for step in TASK_STEPS:
            spec = TASK_FUNCTIONS[step]
            own_environment = {**environment, **_step_environment(step, storage, push)}
            if step == FINALIZE:
                own_environment[c.ENV_MAX_RUNNING_PER_TENANT] = str(max_running_per_tenant)
            function = tether_function(
                self,
                spec.construct_id,
                handler=spec.handler,
                description=spec.description,
                packaging=packaging,
                environment=own_environment,
                memory_size=512,
                timeout=spec.timeout,
                removal_policy=removal_policy,
                log_retention=log_retention,
            )
            function.add_to_role_policy(
                iam.PolicyStatement(actions=list(TABLE_ACTIONS), resources=table_arns)
            )
            grant_key_read(secrets.cursor_secret, function)
            if step == NOTIFY:
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=list(NOTIFY_TABLE_ACTIONS),
                        resources=[storage.tables[key].table_arn for key in NOTIFY_TABLE_KEYS],
                    )
                )
            if spec.state_machine_actions:
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=list(spec.state_machine_actions),
                        resources=[self.state_machine_arn],
                    )
                )
            self._functions[step] = function

        self.log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            # Step Functions delivers logs as vended logs; under this prefix the delivery needs
            # no entry in the account's CloudWatch Logs resource policy (5,120 characters shared
            # by every log group of the account that receives vended logs).
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        acknowledge_checkov(self.log_group, LOG_GROUP_WITHOUT_CMK)
        self.role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Tether JobRunner: invokes its task functions, logs, traces",
        )
        for function in self._functions.values():
            function.grant_invoke(self.role)
        definition = job_runner_definition(
            {step: function.function_arn for step, function in self._functions.items()}
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            role=self.role,
            # ALL: every transition of a job (which batch, which retry, where it paused) is
            # what an incident review reads; a 10,000-item job is ~200 transitions. Without
            # execution data: inputs and outputs carry job params (tenant data) and
            # AwaitResume's task token, which is a credential to resume the job.
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            tracing_enabled=True,
            removal_policy=removal_policy,
        )
        ignore_redundant_role_dependency(self.state_machine)
        self._acknowledge_findings()
        CfnOutput(
            scope,
            "JobRunnerStateMachineArn",
            value=self.state_machine.state_machine_arn,
            description="ARN of the Tether JobRunner state machine (Step Functions Standard)",
        )

    @property
    def functions(self) -> Mapping[str, lambda_.Function]:
        """The task functions by step of `shared.runner.definition.TASK_STEPS`."""
        return MappingProxyType(self._functions)

    def _acknowledge_findings(self) -> None:
        stack = Stack.of(self)
        for function in self._functions.values():
            child = function.node.default_child
            assert isinstance(child, CfnElement)
            logical_id = stack.get_logical_id(child)
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                    reason="`ARN:*` is this task function's versions and aliases (added by "
                    "grant_invoke), so a qualified task ARN keeps working; no other function.",
                )
            )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="CloudWatch Logs delivery (logs:CreateLogDelivery and the other "
                "*LogDelivery, resource-policy and DescribeLogGroups actions Step Functions "
                "logging needs) and X-Ray (tracing) support no resource-level permissions; "
                "lambda:InvokeFunction is scoped to the six task functions.",
            )
        )
