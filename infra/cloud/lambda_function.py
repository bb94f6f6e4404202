"""`tether_function`: one Tether Lambda function the way every construct builds it.

Python 3.11 on arm64 from the shared code asset and dependencies layer, X-Ray tracing, its own
log group, and its own role without managed policies (it may write to its own log group only,
instead of AWSLambdaBasicExecutionRole's "create and write any log group"). The cdk-nag and
checkov findings every such function raises are acknowledged here, once, with their reasons;
findings that depend on what a function is granted are acknowledged by the construct that
grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import (
    Acknowledgment,
    CfnElement,
    CfnResource,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra.cloud.checkov import (
    DEAD_LETTER_CHECK,
    FUNCTION_FINDINGS,
    LOG_GROUP_WITHOUT_CMK,
    acknowledge_checkov,
)
from infra.cloud.packaging import ARCHITECTURE, RUNTIME, LambdaPackaging
from infra.cloud.storage import Storage

CFN_LINT_METADATA: Final = "cfn-lint"
XRAY_ONLY_WILDCARD: Final = (
    "X-Ray PutTraceSegments/PutTelemetryRecords (added by tracing ACTIVE) support no "
    "resource-level permissions; nothing else in the policy has Resource: *."
)


def tether_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    packaging: LambdaPackaging,
    environment: Mapping[str, str],
    memory_size: int,
    timeout: Duration,
    removal_policy: RemovalPolicy,
    log_retention: logs.RetentionDays,
    wildcard_reason: str = XRAY_ONLY_WILDCARD,
    dead_letter_queue: sqs.IQueue | None = None,
) -> lambda_.Function:
    """The function `construct_id`, with `{construct_id}Logs` and `{construct_id}Role` beside it.

    `wildcard_reason` acknowledges the policy's `Resource: *` statement: X-Ray's alone unless
    the caller grants more actions that have no resource-level permissions, and says so.
    """
    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=log_retention, removal_policy=removal_policy
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=packaging.code,
        layers=[packaging.layer],
        memory_size=memory_size,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        environment=dict(environment),
        # Where an asynchronous invocation goes once Lambda's own retries failed.
        dead_letter_queue=dead_letter_queue,
    )
    ignore_redundant_role_dependency(function)
    acknowledge_checkov(
        function,
        {
            check: reason
            for check, reason in FUNCTION_FINDINGS.items()
            if check != DEAD_LETTER_CHECK or dead_letter_queue is None
        },
    )
    acknowledge_checkov(log_group, LOG_GROUP_WITHOUT_CMK)
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason=wildcard_reason,
        )
    )
    Validations.of(function).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-L1",
            reason="Python 3.11 on purpose: pyproject.toml pins requires-python <3.12 and the "
            "layer's wheels are built for cp311; the runtime moves with the project.",
        )
    )
    return function


def ignore_redundant_role_dependency(resource: IConstruct) -> None:
    """Tell cfn-lint, on this resource only, that its `DependsOn` on its role is intended.

    CDK makes a function (and a state machine) depend on its role construct, which renders as
    `DependsOn: [role, role's DefaultPolicy]`. The policy entry is needed (the resource must not
    run before its permissions exist); the role entry repeats the `GetAtt` of its `Role`
    property, which cfn-lint reports as W3005. Harmless, and removing it would mean rewriting
    CDK's dependency rendering, so W3005 is ignored for exactly these resources.
    """
    child = resource.node.default_child
    assert isinstance(child, CfnResource)
    child.add_metadata(CFN_LINT_METADATA, {"config": {"ignore_checks": ["W3005"]}})


def nag_arn(consumer: IConstruct, resource: IConstruct, arn: str) -> str:
    """How cdk-nag spells `arn` (an ARN attribute of `resource`) in a policy of `consumer`'s stack.

    `<LogicalId.Arn>` within one stack; across stacks the CloudFormation export the consumer
    imports. `export_value` is what CDK's automatic cross-stack references call too, so asking
    for the export here creates nothing a grant of the same ARN would not.
    """
    producer = Stack.of(resource)
    consumer_stack = Stack.of(consumer)
    if producer is consumer_stack:
        child = resource.node.default_child
        assert isinstance(child, CfnElement)
        return f"<{producer.get_logical_id(child)}.Arn>"
    imported = consumer_stack.resolve(producer.export_value(arn))
    assert isinstance(imported, dict), imported
    name = imported["Fn::ImportValue"]
    assert isinstance(name, str), name
    return name


def acknowledge_index_access(role: iam.IRole, storage: Storage, reasons: Mapping[str, str]) -> None:
    """Acknowledge the `<table>/index/*` resource a table grant adds, one reason per table key."""
    for key, reason in reasons.items():
        table = storage.tables[key]
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5"
                f"[Resource::{nag_arn(role, table, table.table_arn)}/index/*]",
                reason=reason,
            )
        )
