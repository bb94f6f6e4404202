"""CDK tests of the `Push` construct: configuration from context, SNS permissions scoped to the
configured platform applications and their endpoints, and the Notify task's wiring.

The stack with all three applications configured is tests/infra/conftest.py's `push_stack`
(the IAM parity test reads it too); the shared dev stack has none configured.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

from infra.cloud.push import (
    APNS_CONTEXT,
    FCM_CONTEXT,
    GRACE_CONTEXT,
    PushConfig,
    endpoints_of,
)
from shared import constants as c
from shared.domain.models import Platform
from shared.runner.definition import NOTIFY
from tests.infra.conftest import APNS, APNS_SANDBOX, FCM, SynthesizedStack

APPLICATIONS = sorted((APNS, APNS_SANDBOX, FCM))
ENDPOINTS = sorted(endpoints_of(arn) for arn in APPLICATIONS)
FUNCTION = "AWS::Lambda::Function"
POLICY = "AWS::IAM::Policy"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(stack: SynthesizedStack, function: Any) -> list[dict[str, Any]]:
    role_id = stack.logical_id_of(function.role.role_name)
    return [
        statement
        for policy in stack.resources(POLICY).values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _sns(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    """SNS action → the resources granted for it."""
    granted: dict[str, list[str]] = {}
    for statement in statements:
        for action in _as_list(statement["Action"]):
            if action.startswith("sns:"):
                granted.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return {action: sorted(resources) for action, resources in granted.items()}


def _variables(stack: SynthesizedStack, function: Any) -> dict[str, Any]:
    resource = stack.resources(FUNCTION)[stack.logical_id_of(function.function_name)]
    variables = resource["Properties"]["Environment"]["Variables"]
    assert isinstance(variables, dict)
    return variables


def test_http_function_manages_endpoints_of_the_configured_applications_only(
    push_stack: SynthesizedStack,
) -> None:
    # Given the HTTP function with push configured
    stack = push_stack.built.stack
    statements = _statements(push_stack, stack.http_api.function)

    # Then it may create endpoints on the three applications, and read, repair and delete
    # their endpoints, nothing else of SNS
    assert _sns(statements) == {
        "sns:CreatePlatformEndpoint": APPLICATIONS,
        "sns:GetEndpointAttributes": ENDPOINTS,
        "sns:SetEndpointAttributes": ENDPOINTS,
        "sns:DeleteEndpoint": ENDPOINTS,
    }
    # And it knows each application from its variable, as the settings read them
    variables = _variables(push_stack, stack.http_api.function)
    assert variables[c.ENV_PUSH_APNS_ARN] == APNS
    assert variables[c.ENV_PUSH_APNS_SANDBOX_ARN] == APNS_SANDBOX
    assert variables[c.ENV_PUSH_FCM_ARN] == FCM
    # And it reaches the devices table
    devices_id = push_stack.logical_id_of(stack.storage.tables["devices"].table_name)
    assert devices_id in json.dumps(statements)


def test_notify_reads_and_publishes_to_endpoints_only(push_stack: SynthesizedStack) -> None:
    # Given the Notify task function
    stack = push_stack.built.stack
    notify = stack.job_runner.functions[NOTIFY]
    statements = _statements(push_stack, notify)

    # Then it may read endpoints and publish to them; no endpoint creation, no topics, no `*`
    assert _sns(statements) == {"sns:GetEndpointAttributes": ENDPOINTS, "sns:Publish": ENDPOINTS}
    variables = _variables(push_stack, notify)
    assert {variables[c.ENV_PUSH_APNS_ARN], variables[c.ENV_PUSH_FCM_ARN]} == {APNS, FCM}
    # And the other tasks know nothing of SNS, but all share the configured grace period
    for step, function in stack.job_runner.functions.items():
        if step != NOTIFY:
            assert _sns(_statements(push_stack, function)) == {}
            assert c.ENV_PUSH_FCM_ARN not in _variables(push_stack, function)
        assert _variables(push_stack, function)[c.ENV_PUSH_GRACE_SECONDS] == "20"


def test_without_configuration_nothing_may_touch_sns(dev_stack: SynthesizedStack) -> None:
    # Given the dev stack synthesized without any push context
    stack = dev_stack.built.stack
    functions = [stack.http_api.function, *stack.job_runner.functions.values()]

    # Then no function has an SNS permission or an application variable: push is off, closed
    for function in functions:
        assert _sns(_statements(dev_stack, function)) == {}
        assert not {c.ENV_PUSH_APNS_ARN, c.ENV_PUSH_FCM_ARN} & set(_variables(dev_stack, function))
    assert stack.push.config.applications == {}


def test_context_values_are_validated() -> None:
    def config(**context: Any) -> PushConfig:
        app = App(context=context)
        return PushConfig.from_context(app)

    assert config(**{APNS_CONTEXT: APNS}).applications == {Platform.IOS: APNS}
    assert config().grace_seconds == c.DEFAULT_PUSH_GRACE_SECONDS
    with pytest.raises(ValueError, match="tether:apnsArn"):
        config(**{APNS_CONTEXT: FCM})  # an FCM application where APNs belongs
    with pytest.raises(ValueError, match="tether:fcmArn"):
        config(**{FCM_CONTEXT: "arn:aws:sns:eu-west-1:123456789012:my-topic"})
    with pytest.raises(ValueError, match="tether:pushGraceSeconds"):
        config(**{GRACE_CONTEXT: -1})
