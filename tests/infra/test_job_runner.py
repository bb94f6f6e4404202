"""CDK tests of the `JobRunner` construct: the one definition, its task functions, its grants.

The deployed definition is compared with `shared.runner.definition.job_runner_definition`, the
builder the local stack hands moto, after the template's ARN tokens are swapped for placeholder
ARNs: equal documents mean the cloud and the local runner cannot drift.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from infra.cloud.job_runner import (
    FINALIZE_ENVIRONMENT_KEYS,
    NOTIFY_TABLE_KEYS,
    TABLE_KEYS,
    TASK_FUNCTIONS,
)
from shared import constants as c
from shared.runner.definition import NOTIFY, TASK_STEPS, job_runner_definition

if TYPE_CHECKING:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_lambda as lambda_

    from tests.infra.conftest import SynthesizedStack

FUNCTION = "AWS::Lambda::Function"
POLICY = "AWS::IAM::Policy"
STATE_MACHINE = "AWS::StepFunctions::StateMachine"


def _placeholder_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:eu-west-1:123456789012:function:{logical_id}"


def _function_id(stack: SynthesizedStack, function: lambda_.IFunction) -> str:
    return stack.logical_id_of(function.function_name)


def _state_machine(stack: SynthesizedStack) -> dict[str, Any]:
    machines = stack.resources(STATE_MACHINE)
    assert len(machines) == 1
    properties = next(iter(machines.values()))["Properties"]
    assert isinstance(properties, dict)
    return properties


def _statements(stack: SynthesizedStack, role: iam.IRole | None) -> list[dict[str, Any]]:
    assert role is not None
    role_id = stack.logical_id_of(role.role_name)
    statements: list[dict[str, Any]] = []
    for policy in stack.resources(POLICY).values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolved_definition(definition: Any) -> dict[str, Any]:
    """The definition string with each `Fn::GetAtt [id, Arn]` replaced by a placeholder ARN."""
    if isinstance(definition, str):
        parts: list[Any] = [definition]
    else:
        separator, parts = definition["Fn::Join"]
        assert separator == ""
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        else:
            logical_id, attribute = part["Fn::GetAtt"]
            assert attribute == "Arn"
            text += _placeholder_arn(logical_id)
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def test_deployed_definition_is_the_shared_definition(dev_stack: SynthesizedStack) -> None:
    # Given the task functions' logical ids, each standing for a placeholder ARN
    functions = dev_stack.built.stack.job_runner.functions
    placeholders = {
        step: _placeholder_arn(_function_id(dev_stack, function))
        for step, function in functions.items()
    }

    # When the template's definition has its ARN tokens resolved to those placeholders
    deployed = _resolved_definition(_state_machine(dev_stack)["DefinitionString"])

    # Then it is exactly the document the local stack runs (the one definition)
    assert set(placeholders) == set(TASK_STEPS)
    assert deployed == job_runner_definition(placeholders)


def test_one_function_per_task_step_with_its_handler(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack
    runner = dev_stack.built.stack.job_runner
    resources = dev_stack.resources(FUNCTION)

    # Then each task step has its own arm64 Python 3.11 function running its runner handler
    handlers = {}
    for step, function in runner.functions.items():
        properties = resources[_function_id(dev_stack, function)]["Properties"]
        assert properties["Runtime"] == "python3.11"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        handlers[step] = properties["Handler"]
    assert handlers == {
        "prepare": "functions.runner.prepare",
        "process": "functions.runner.process",
        "record_failure": "functions.runner.record_failure",
        "await_resume": "functions.runner.await_resume",
        "finalize": "functions.runner.finalize",
        "notify": "functions.runner.notify",
    }
    assert {step: spec.handler for step, spec in TASK_FUNCTIONS.items()} == handlers


def test_task_environment_is_exactly_what_the_runner_settings_read(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the task functions and the state machine's (fixed) name
    stack = dev_stack.built.stack
    storage = stack.storage
    expected = set(storage.function_environment(*TABLE_KEYS)) | {
        c.ENV_CURSOR_SECRET_ARN,
        c.ENV_STATE_MACHINE_ARN,
        c.ENV_BATCH_SIZE,
        c.ENV_BATCHES_PER_EXECUTION,
        c.ENV_PUSH_GRACE_SECONDS,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
    }
    # Notify also finds the delivery cursors and the devices (and, configured, the platform
    # applications: tests/infra/test_push.py)
    notify_extra = set(storage.function_environment(*NOTIFY_TABLE_KEYS))
    machine_name = _state_machine(dev_stack)["StateMachineName"]

    for step, function in stack.job_runner.functions.items():
        # When reading a function's variables
        resource = dev_stack.resources(FUNCTION)[_function_id(dev_stack, function)]
        variables = resource["Properties"]["Environment"]["Variables"]

        # Then the keys match (Finalize also frees run slots: test_schedules; Notify reads
        # devices), the cursor secret is an ARN, and the state machine ARN is the one
        # CloudFormation gives the named state machine (a Ref would be a cycle)
        extra = {"finalize": set(FINALIZE_ENVIRONMENT_KEYS), NOTIFY: notify_extra}.get(step, set())
        assert set(variables) == expected | extra
        assert variables[c.ENV_PUSH_GRACE_SECONDS] == str(c.DEFAULT_PUSH_GRACE_SECONDS)
        assert variables[c.ENV_CURSOR_SECRET_ARN] == {
            "Ref": dev_stack.logical_id_of(stack.secrets.cursor_secret.secret_arn)
        }
        assert variables[c.ENV_BATCH_SIZE] == str(c.DEFAULT_BATCH_SIZE)
        arn = json.dumps(variables[c.ENV_STATE_MACHINE_ARN])
        assert arn.endswith(f':stateMachine:{machine_name}"]]}}')
        assert ":states:" in arn


def test_tasks_reach_jobs_and_messages_and_their_own_state_machine_only(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the task functions' roles
    stack = dev_stack.built.stack
    tables = stack.storage.tables
    table_arns = sorted(
        json.dumps({"Fn::GetAtt": [dev_stack.logical_id_of(tables[key].table_name), "Arn"]})
        for key in TABLE_KEYS
    )
    notify_arns = sorted(
        json.dumps({"Fn::GetAtt": [dev_stack.logical_id_of(tables[key].table_name), "Arn"]})
        for key in NOTIFY_TABLE_KEYS
    )
    machine_arn = stack.resolve(stack.job_runner.state_machine_arn)

    for step, function in stack.job_runner.functions.items():
        # When reading a role's statements
        statements = _statements(dev_stack, function.role)

        # Then DynamoDB actions reach exactly the jobs and messages tables (no index, no stream);
        # Finalize's run-slot grants are the Schedules construct's (test_schedules)
        dynamo = [
            statement
            for statement in statements
            if any(action.startswith("dynamodb:") for action in _as_list(statement["Action"]))
            and isinstance(statement["Resource"], list)
        ]
        assert len(dynamo) == (2 if step == NOTIFY else 1)
        assert sorted(map(json.dumps, dynamo[0]["Resource"])) == table_arns
        if step == "finalize":
            continue
        if step == NOTIFY:
            # And Notify reads cursors and devices and marks disabled ones: no delete, no scan
            assert sorted(map(json.dumps, dynamo[1]["Resource"])) == notify_arns
            assert sorted(_as_list(dynamo[1]["Action"])) == [
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ]

        # And Step Functions actions are the step's own, on this state machine only
        states = [
            statement
            for statement in statements
            if any(action.startswith("states:") for action in _as_list(statement["Action"]))
        ]
        expected = TASK_FUNCTIONS[step].state_machine_actions
        assert [_as_list(s["Action"]) for s in states] == ([list(expected)] if expected else [])
        assert all(s["Resource"] == machine_arn for s in states)

        # And the only `Resource: *` is X-Ray's
        star = {a for s in statements if s["Resource"] == "*" for a in _as_list(s["Action"])}
        assert star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert TASK_FUNCTIONS["process"].state_machine_actions == ("states:StartExecution",)
    assert TASK_FUNCTIONS["await_resume"].state_machine_actions == ("states:SendTaskSuccess",)


def test_state_machine_role_invokes_exactly_the_task_functions(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the state machine's role
    runner = dev_stack.built.stack.job_runner
    role_id = dev_stack.logical_id_of(runner.role.role_name)
    role = dev_stack.resources("AWS::IAM::Role")[role_id]["Properties"]

    # When reading its statements
    statements = _statements(dev_stack, runner.role)

    # Then lambda:InvokeFunction reaches each task function and its versions, nothing else
    invoke = [s for s in statements if "lambda:InvokeFunction" in _as_list(s["Action"])]
    assert len(invoke) == 1
    assert _as_list(invoke[0]["Action"]) == ["lambda:InvokeFunction"]
    expected: list[Any] = []
    for function in runner.functions.values():
        arn = {"Fn::GetAtt": [_function_id(dev_stack, function), "Arn"]}
        expected += [arn, {"Fn::Join": ["", [arn, ":*"]]}]
    assert sorted(map(json.dumps, invoke[0]["Resource"])) == sorted(map(json.dumps, expected))
    assert not any(
        a.startswith("lambda:") for s in statements if s is not invoke[0] for a in s["Action"]
    )

    # And the role is assumed by Step Functions, with no managed policies
    assert "ManagedPolicyArns" not in role
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "states.amazonaws.com"}
    assert _state_machine(dev_stack)["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_state_machine_is_standard_logged_without_data_and_traced(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given each stage's state machine
    for stack, days in ((dev_stack, 7), (prod_stack, 90)):
        properties = _state_machine(stack)
        log_group = stack.built.stack.job_runner.log_group

        # Then it is Standard, traced, and logs every event but no inputs or outputs, into its
        # own log group with the stage's retention
        assert properties["StateMachineType"] == "STANDARD"
        assert properties["TracingConfiguration"] == {"Enabled": True}
        assert properties["LoggingConfiguration"] == {
            "Destinations": [
                {
                    "CloudWatchLogsLogGroup": {
                        "LogGroupArn": {
                            "Fn::GetAtt": [stack.logical_id_of(log_group.log_group_name), "Arn"]
                        }
                    }
                }
            ],
            "IncludeExecutionData": False,
            "Level": "ALL",
        }
        group = stack.resources("AWS::Logs::LogGroup")[
            stack.logical_id_of(log_group.log_group_name)
        ]
        assert group["Properties"]["RetentionInDays"] == days
        assert group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
        assert properties["StateMachineName"] == f"Tether-{stack.built.stack.stage}-JobRunner"


def test_http_function_starts_and_resumes_this_state_machine_only(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the HTTP function and the state machine
    stack = dev_stack.built.stack
    function = stack.http_api.function
    machine = {"Ref": dev_stack.logical_id_of(stack.job_runner.state_machine.state_machine_arn)}

    # When reading its variables and statements
    resource = dev_stack.resources(FUNCTION)[_function_id(dev_stack, function)]
    variables = resource["Properties"]["Environment"]["Variables"]
    statements = _statements(dev_stack, function.role)

    # Then it knows the state machine's ARN and may start executions and send tokens back
    # on it, and nothing else of Step Functions
    assert variables[c.ENV_STATE_MACHINE_ARN] == machine
    states = [
        s
        for s in statements
        if any(action.startswith("states:") for action in _as_list(s["Action"]))
    ]
    assert len(states) == 1
    assert sorted(_as_list(states[0]["Action"])) == [
        "states:SendTaskSuccess",
        "states:StartExecution",
    ]
    assert states[0]["Resource"] == machine


def test_stack_outputs_the_state_machine_arn(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack / Then the state machine's ARN is an output
    output = dev_stack.template.find_outputs("JobRunnerStateMachineArn")["JobRunnerStateMachineArn"]
    machine = dev_stack.built.stack.job_runner.state_machine
    assert output["Value"] == {"Ref": dev_stack.logical_id_of(machine.state_machine_arn)}


def test_synth_passes_cdk_nag(dev_stack: SynthesizedStack, prod_stack: SynthesizedStack) -> None:
    # Given both stages synthesized with the cdk-nag plugin (a finding fails the synth)
    # Then each assembly holds the stack's template
    for stack in (dev_stack, prod_stack):
        name = stack.built.stack.stack_name
        assert (stack.outdir / f"{name}.template.json").is_file()
