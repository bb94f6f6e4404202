"""CDK tests of the `Observability` construct (alarms, topic, dashboard) and of tracing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra.cloud.observability import DELIVERY_METRICS, PUSH_FAILURE_METRIC
from infra.cloud.stage import DeploymentStage
from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.domain.models import PushOutcome

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

ALARM = "AWS::CloudWatch::Alarm"
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def _alarms(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    observability = stack.built.stack.observability
    return {
        key: stack.resources(ALARM)[stack.logical_id_of(alarm.alarm_name)]["Properties"]
        for key, alarm in observability.alarms.items()
    }


def test_every_alarm_notifies_the_alarm_topic(dev_stack: SynthesizedStack) -> None:
    # Given the dev stage / When synthesized
    topic = {"Ref": dev_stack.logical_id_of(dev_stack.built.stack.observability.topic.topic_arn)}
    alarms = _alarms(dev_stack)

    # Then the eight alarms exist, each notifying the topic when it fires and when it clears,
    # and no traffic never fires one
    assert set(alarms) == {
        "DispatcherDlq",
        "FailedExecutions",
        "DispatcherErrors",
        "Http5xx",
        "PushFailures",
        "LaunchDlq",
        "LauncherErrors",
        "CleanupErrors",
    }
    dev_stack.template.resource_count_is(ALARM, 8)
    for properties in alarms.values():
        assert properties["AlarmActions"] == [topic]
        assert properties["OKActions"] == [topic]
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_alarms_watch_the_right_metrics(dev_stack: SynthesizedStack) -> None:
    # Given the alarms / When synthesized
    alarms = _alarms(dev_stack)
    stack = dev_stack.built.stack

    # Then the DLQ alarm reads the dispatcher's DLQ, the error alarm the dispatcher function
    dlq = alarms["DispatcherDlq"]
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [
            dev_stack.logical_id_of(stack.websocket_api.dead_letters.queue_url),
            "QueueName",
        ]
    }
    errors = alarms["DispatcherErrors"]
    assert errors["MetricName"] == "Errors"
    assert errors["Dimensions"][0]["Value"] == {
        "Ref": dev_stack.logical_id_of(stack.websocket_api.dispatcher_function.function_name)
    }
    # the executions alarm adds failed and timed-out executions of the JobRunner
    executions = alarms["FailedExecutions"]["Metrics"]
    assert {m["Expression"] for m in executions if "Expression" in m} == {"failed + timedOut"}
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in executions if "MetricStat" in m} == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
    }
    # the 5xx alarm is a rate of the HTTP API's requests
    rate = alarms["Http5xx"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate if "MetricStat" in m} == {
        "5xx",
        "Count",
    }
    # the push alarm reads the Powertools metric of the Notify task
    push = alarms["PushFailures"]
    assert (push["Namespace"], push["MetricName"]) == (METRICS_NAMESPACE, PUSH_FAILURE_METRIC)
    assert push["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
    # the launch DLQ alarm reads the launch DLQ's depth; the error alarms their functions
    launch_dlq = alarms["LaunchDlq"]
    assert (launch_dlq["MetricName"], launch_dlq["Statistic"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert launch_dlq["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [
            dev_stack.logical_id_of(stack.schedules.launch_failures.queue_url),
            "QueueName",
        ]
    }
    for key, function in [
        ("LauncherErrors", stack.schedules.launcher),
        ("CleanupErrors", stack.schedules.cleanup),
    ]:
        assert (alarms[key]["Namespace"], alarms[key]["MetricName"]) == ("AWS/Lambda", "Errors")
        assert alarms[key]["Dimensions"][0]["Value"] == {
            "Ref": dev_stack.logical_id_of(function.function_name)
        }


@pytest.mark.parametrize("stage", list(DeploymentStage))
def test_thresholds_follow_the_stage(
    stage: DeploymentStage, dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given a stage / When synthesized
    stack = dev_stack if stage is DeploymentStage.DEV else prod_stack
    alarms = _alarms(stack)
    thresholds = stage.alarm_thresholds

    # Then each alarm fires at the stage's threshold
    assert alarms["DispatcherDlq"]["Threshold"] == thresholds.dispatcher_dlq_messages
    assert alarms["FailedExecutions"]["Threshold"] == thresholds.failed_executions
    assert alarms["DispatcherErrors"]["Threshold"] == thresholds.dispatcher_errors
    assert alarms["Http5xx"]["Threshold"] == thresholds.http_5xx_percent
    assert alarms["PushFailures"]["Threshold"] == thresholds.push_failures
    assert alarms["LaunchDlq"]["Threshold"] == thresholds.launch_dlq_messages
    assert alarms["LauncherErrors"]["Threshold"] == thresholds.launcher_errors
    assert alarms["CleanupErrors"]["Threshold"] == thresholds.cleanup_errors


def test_prod_alarms_are_stricter_than_dev() -> None:
    # Given both stages' thresholds / Then prod fires no later than dev on any alarm
    dev = DeploymentStage.DEV.alarm_thresholds
    prod = DeploymentStage.PROD.alarm_thresholds
    for name in dev.__slots__:
        assert getattr(prod, name) <= getattr(dev, name), name
    assert prod != dev


def test_alarm_topic_is_encrypted_tls_only_and_an_output(dev_stack: SynthesizedStack) -> None:
    # Given the alarm topic / When synthesized
    observability = dev_stack.built.stack.observability
    topic_id = dev_stack.logical_id_of(observability.topic.topic_arn)
    topic = dev_stack.resources("AWS::SNS::Topic")[topic_id]["Properties"]
    key_id = dev_stack.logical_id_of(observability.key.key_id)
    key = dev_stack.resources("AWS::KMS::Key")[key_id]["Properties"]
    policy = next(iter(dev_stack.resources("AWS::SNS::TopicPolicy").values()))["Properties"]
    outputs = dev_stack.template.to_json()["Outputs"]

    # Then its messages are encrypted with a rotated key CloudWatch may use, publishing
    # needs TLS, and its ARN is an output
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for s in statements
    )
    denials = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denials[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_dashboard_shows_alarms_and_delivery_metrics(dev_stack: SynthesizedStack) -> None:
    # Given the dashboard / When synthesized
    dashboards = dev_stack.resources("AWS::CloudWatch::Dashboard")
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])

    # Then it has the alarm status and every delivery metric the handlers emit
    assert len(dashboards) == 1
    for alarm in dev_stack.built.stack.observability.alarms.values():
        assert dev_stack.logical_id_of(alarm.alarm_name) in body
    for name in DELIVERY_METRICS.values():
        assert f'\\"{name}\\"' in body, name


def test_the_delivery_metrics_are_emitted_by_the_handlers() -> None:
    # Given the handlers' source / When searched for the metrics the dashboard and alarms read
    source = "\n".join(path.read_text() for path in FUNCTIONS_DIR.glob("*.py"))
    emitted = set(re.findall(r'add_metric\(\s*name="([A-Za-z]+)"', source))
    # Notify names push outcomes "Push" + outcome (PushSent, PushError, ...)
    emitted |= {
        "Push" + "".join(part.capitalize() for part in outcome.value.split("_"))
        for outcome in PushOutcome
    }

    # Then every metric the dashboard shows and the push alarm reads is emitted somewhere
    assert set(DELIVERY_METRICS.values()) <= emitted
    assert PUSH_FAILURE_METRIC in emitted


def test_xray_tracing_is_on_everywhere(dev_stack: SynthesizedStack) -> None:
    # Given every function and the state machine / When synthesized
    functions = dev_stack.tether_functions()
    machines = dev_stack.resources("AWS::StepFunctions::StateMachine")

    # Then each one is traced with X-Ray (API Gateway HTTP and WebSocket APIs have no X-Ray;
    # CDK's deploy-time BucketDeployment handler is left as CDK makes it)
    assert len(functions) == 12
    for logical_id, function in functions.items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, logical_id
    for machine in machines.values():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
