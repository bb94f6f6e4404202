"""CDK tests of the `Schedules` construct: Scheduler group and role, launcher and
cleanup functions, the hourly rule, the import bucket and its rule, least-privilege grants."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from infra.cloud.schedules import (
    CLEANUP_HANDLER,
    CLEANUP_TABLES,
    IMPORT_RULE_RETRY_ATTEMPTS,
    LAUNCHER_ASYNC_RETRY_ATTEMPTS,
    LAUNCHER_HANDLER,
    LAUNCHER_TABLES,
    SCHEDULER_ACTIONS,
)
from shared import constants as c
from tests.infra.test_job_runner import _as_list, _function_id, _statements

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

FUNCTION = "AWS::Lambda::Function"


def _properties(stack: SynthesizedStack, kind: str, logical_id: str) -> dict[str, Any]:
    properties = stack.resources(kind)[logical_id]["Properties"]
    assert isinstance(properties, dict)
    return properties


def _arn(stack: SynthesizedStack, function: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [_function_id(stack, function), "Arn"]}


def _queue_id(stack: SynthesizedStack) -> str:
    return stack.logical_id_of(stack.built.stack.schedules.launch_failures.queue_url)


def _queue_arn(stack: SynthesizedStack) -> dict[str, Any]:
    return {"Fn::GetAtt": [_queue_id(stack), "Arn"]}


def test_scheduler_group_and_a_role_that_invokes_the_launcher_only(
    dev_stack: SynthesizedStack,
) -> None:
    schedules = dev_stack.built.stack.schedules
    # Given the synthesized group / Then it is named after the stack
    (group,) = dev_stack.resources("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "Tether-dev-schedules"

    # When reading the execution role
    role_id = dev_stack.logical_id_of(schedules.role.role_name)
    role = _properties(dev_stack, "AWS::IAM::Role", role_id)
    statements = _statements(dev_stack, schedules.role)

    # Then only Scheduler of this account assumes it, and it may invoke the launcher, no more
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert "ManagedPolicyArns" not in role
    (invoke, dead_letter) = statements
    launcher = _arn(dev_stack, schedules.launcher)
    assert _as_list(invoke["Action"]) == ["lambda:InvokeFunction"]
    assert sorted(map(json.dumps, invoke["Resource"])) == sorted(
        map(json.dumps, [launcher, {"Fn::Join": ["", [launcher, ":*"]]}])
    )
    # And send what it gave up on to the launch DLQ, no other queue
    assert _as_list(dead_letter["Action"]) == ["sqs:SendMessage"]
    assert dead_letter["Resource"] == _queue_arn(dev_stack)


def test_launcher_and_cleanup_functions(dev_stack: SynthesizedStack) -> None:
    stack = dev_stack.built.stack
    storage = stack.storage
    for function, handler, tables, timeout in [
        (stack.schedules.launcher, LAUNCHER_HANDLER, LAUNCHER_TABLES, 30),
        (stack.schedules.cleanup, CLEANUP_HANDLER, CLEANUP_TABLES, c.CLEANUP_LEASE_SECONDS),
    ]:
        properties = _properties(dev_stack, FUNCTION, _function_id(dev_stack, function))
        assert (properties["Handler"], properties["Timeout"]) == (handler, timeout)
        variables = properties["Environment"]["Variables"]
        assert set(variables) == set(storage.function_environment(*tables)) | {
            c.ENV_IMPORT_BUCKET,
            c.ENV_CURSOR_SECRET_ARN,
            c.ENV_STATE_MACHINE_ARN,
            c.ENV_MAX_RUNNING_PER_TENANT,
            c.ENV_POWERTOOLS_SERVICE_NAME,
            c.ENV_POWERTOOLS_METRICS_NAMESPACE,
        }
        statements = _statements(dev_stack, function.role)
        states = [
            s for s in statements if any(a.startswith("states:") for a in _as_list(s["Action"]))
        ]
        actions = sorted(a for s in states for a in _as_list(s["Action"]))
        expected = ["states:StartExecution"]
        if function is stack.schedules.cleanup:
            expected = ["states:DescribeExecution", "states:StartExecution"]
        assert actions == expected
        star = {a for s in statements if s["Resource"] == "*" for a in _as_list(s["Action"])}
        assert star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_cleanup_runs_hourly_and_imports_trigger_the_launcher(dev_stack: SynthesizedStack) -> None:
    schedules = dev_stack.built.stack.schedules
    rules = {
        rule_id: rule["Properties"]
        for rule_id, rule in dev_stack.resources("AWS::Events::Rule").items()
    }
    cleanup_rule = rules[dev_stack.logical_id_of(schedules.cleanup_rule.rule_name)]
    import_rule = rules[dev_stack.logical_id_of(schedules.import_rule.rule_name)]

    # The cleanup rule: rate(1 hour) → the cleanup function
    assert cleanup_rule["ScheduleExpression"] == "rate(1 hour)"
    assert [t["Arn"] for t in cleanup_rule["Targets"]] == [_arn(dev_stack, schedules.cleanup)]
    # The import rule: S3 Object Created in the import bucket under imports/ → the launcher
    bucket_ref = {"Ref": dev_stack.logical_id_of(schedules.imports.bucket_name)}
    assert import_rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket_ref]}, "object": {"key": [{"prefix": "imports/"}]}},
    }
    assert [t["Arn"] for t in import_rule["Targets"]] == [_arn(dev_stack, schedules.launcher)]
    # With explicit retries, then the launch DLQ (not a silent drop)
    (target,) = import_rule["Targets"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": IMPORT_RULE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": c.SCHEDULER_MAX_EVENT_AGE_SECONDS,
    }
    assert target["DeadLetterConfig"] == {"Arn": _queue_arn(dev_stack)}
    # The bucket sends its events to EventBridge, is private, encrypted, and expires uploads
    bucket = _properties(dev_stack, "AWS::S3::Bucket", bucket_ref["Ref"])
    assert bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30


def test_http_function_manages_schedules_in_the_group_only(dev_stack: SynthesizedStack) -> None:
    stack = dev_stack.built.stack
    function = stack.http_api.function
    statements = _statements(dev_stack, function.role)
    variables = _properties(dev_stack, FUNCTION, _function_id(dev_stack, function))["Environment"][
        "Variables"
    ]

    (managing,) = [s for s in statements if "scheduler:CreateSchedule" in _as_list(s["Action"])]
    assert sorted(_as_list(managing["Action"])) == sorted(SCHEDULER_ACTIONS)
    assert json.dumps(managing["Resource"]).endswith(':schedule/Tether-dev-schedules/*"]]}')
    (passing,) = [s for s in statements if "iam:PassRole" in _as_list(s["Action"])]
    role_arn = {"Fn::GetAtt": [dev_stack.logical_id_of(stack.schedules.role.role_name), "Arn"]}
    assert passing["Resource"] == role_arn
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert variables[c.ENV_SCHEDULER_GROUP] == "Tether-dev-schedules"
    assert variables[c.ENV_SCHEDULER_ROLE_ARN] == role_arn
    assert variables[c.ENV_LAUNCHER_ARN] == _arn(dev_stack, stack.schedules.launcher)
    # the schedules it writes name the launch DLQ (shared.adapters.scheduler)
    assert variables[c.ENV_SCHEDULER_DLQ_ARN] == _queue_arn(dev_stack)
    bucket_ref = {"Ref": dev_stack.logical_id_of(stack.schedules.imports.bucket_name)}
    assert variables[c.ENV_IMPORT_BUCKET] == bucket_ref
    assert not [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]


def test_finalize_frees_run_slots_and_the_csv_tasks_read_imports(
    dev_stack: SynthesizedStack,
) -> None:
    stack = dev_stack.built.stack
    runner = stack.job_runner
    statements = _statements(dev_stack, runner.functions["finalize"].role)
    limits = {
        "Fn::GetAtt": [dev_stack.logical_id_of(stack.storage.tables["limits"].table_name), "Arn"]
    }

    (update,) = [s for s in statements if s["Action"] == "dynamodb:UpdateItem"]
    assert update["Resource"] == limits
    (query,) = [s for s in statements if s["Action"] == "dynamodb:Query"]
    assert json.dumps(query["Resource"]).endswith('/index/queue"]]}')
    assert any(s["Action"] == "states:StartExecution" for s in statements)
    bucket = dev_stack.logical_id_of(stack.schedules.imports.bucket_name)
    # The tasks that read a csv_import's object may GetObject under imports/ of the import
    # bucket: not the whole bucket, not `*`, no listing (no existence oracle), nothing else.
    # Finalize too: a completed import's result re-reads its first row errors.
    imports_only = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/imports/*"]]}
    for step in ("prepare", "process", "finalize"):
        statements = _statements(dev_stack, runner.functions[step].role)
        s3 = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
        assert s3 == [{"Action": "s3:GetObject", "Effect": "Allow", "Resource": imports_only}]
    for step in ("record_failure", "await_resume", "notify"):
        assert bucket not in json.dumps(_statements(dev_stack, runner.functions[step].role))


def test_the_launch_dlq_is_encrypted_tls_only_and_fed_by_every_launch_path(
    dev_stack: SynthesizedStack,
) -> None:
    schedules = dev_stack.built.stack.schedules
    queue_id = _queue_id(dev_stack)
    properties = _properties(dev_stack, "AWS::SQS::Queue", queue_id)

    # It is encrypted at rest (SQS-managed keys) and keeps messages 14 days for a redrive
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    # And its policy refuses requests without TLS, and lets the import rule (only) send to it
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev_stack.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    deny, allow = policy
    assert (deny["Effect"], deny["Principal"], deny["Condition"]) == (
        "Deny",
        {"AWS": "*"},
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == (
        "Allow",
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
    )
    import_rule = dev_stack.logical_id_of(schedules.import_rule.rule_name)
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [import_rule, "Arn"]}}
    }

    # And the launcher's failed asynchronous invocations (after explicit retries) land there
    launcher = _properties(dev_stack, FUNCTION, _function_id(dev_stack, schedules.launcher))
    assert launcher["DeadLetterConfig"] == {"TargetArn": _queue_arn(dev_stack)}
    (invoke_config,) = dev_stack.resources("AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["FunctionName"] == {
        "Ref": _function_id(dev_stack, schedules.launcher)
    }
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == LAUNCHER_ASYNC_RETRY_ATTEMPTS
    assert (
        invoke_config["Properties"]["MaximumEventAgeInSeconds"] == c.SCHEDULER_MAX_EVENT_AGE_SECONDS
    )
    sends = [
        s
        for s in _statements(dev_stack, schedules.launcher.role)
        if "sqs:SendMessage" in _as_list(s["Action"])
    ]
    assert [s["Resource"] for s in sends] == [_queue_arn(dev_stack)]


def test_both_stages_synthesize_clean_under_cdk_nag(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # A finding would have failed the synth in the fixtures; both assemblies exist
    for stack in (dev_stack, prod_stack):
        assert stack.template.find_resources("AWS::Scheduler::ScheduleGroup")
        assert (stack.outdir / f"{stack.built.stack.stack_name}.template.json").is_file()
