"""CDK tests of the `WebSocketApi` construct: routes, the $connect authorizer, the dispatcher.

Environment keys come from `shared.constants`, the module the handlers' settings read, so a key
renamed on one side fails here; policies are checked for exactly the tables, secrets and
`@connections` resource each function needs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.cloud.websocket_api import (
    AUTHORIZER_HANDLER,
    DISPATCHER_HANDLER,
    ROUTE_KEYS,
    WS_HANDLER,
)
from shared import constants as c

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_

    from tests.infra.conftest import SynthesizedStack

FUNCTION = "AWS::Lambda::Function"
POLICY = "AWS::IAM::Policy"
ROUTE = "AWS::ApiGatewayV2::Route"
FUNCTIONS = ("authorizer_function", "handler_function", "dispatcher_function")


def _function(stack: SynthesizedStack, name: str) -> lambda_.Function:
    function = getattr(stack.built.stack.websocket_api, name)
    assert function is not None
    return function  # type: ignore[no-any-return]


def _properties(stack: SynthesizedStack, name: str) -> dict[str, Any]:
    function = _function(stack, name)
    properties = stack.resources(FUNCTION)[stack.logical_id_of(function.function_name)]
    assert isinstance(properties["Properties"], dict)
    return properties["Properties"]


def _statements(stack: SynthesizedStack, name: str) -> list[dict[str, Any]]:
    role = _function(stack, name).role
    assert role is not None
    role_id = stack.logical_id_of(role.role_name)
    statements: list[dict[str, Any]] = []
    for policy in stack.resources(POLICY).values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _arn_of(stack: SynthesizedStack, token: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [stack.logical_id_of(token), attribute]}


def _api_id(stack: SynthesizedStack) -> str:
    return stack.logical_id_of(stack.built.stack.websocket_api.api.api_id)


def _routes(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    """Route key → properties, for the WebSocket API's routes."""
    on_api = {"Properties": {"ApiId": {"Ref": _api_id(stack)}}}
    found = stack.template.find_resources(ROUTE, on_api)
    return {route["Properties"]["RouteKey"]: route["Properties"] for route in found.values()}


# --- the API ----------------------------------------------------------------------------------


def test_api_selects_routes_by_the_body_action(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack / When reading the WebSocket API
    api = dev_stack.resources("AWS::ApiGatewayV2::Api")[_api_id(dev_stack)]

    # Then it is a WebSocket API routing on `$request.body.action` (docs/protocol.md)
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"


def test_every_route_reaches_the_ws_handler(dev_stack: SynthesizedStack) -> None:
    # Given the WebSocket API's routes
    routes = _routes(dev_stack)
    handler = _function(dev_stack, "handler_function")
    integrations = dev_stack.resources("AWS::ApiGatewayV2::Integration")

    # Then the lifecycle routes and each client action exist, and nothing else
    assert set(routes) == set(ROUTE_KEYS)
    assert set(ROUTE_KEYS) == {
        *("$connect", "$disconnect", "$default"),
        *("subscribe", "unsubscribe", "ack", "cancel", "ping"),
    }
    # And each is a Lambda proxy integration of the WebSocket handler
    for route in routes.values():
        target = route["Target"]["Fn::Join"][1][1]["Ref"]
        integration = integrations[target]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert dev_stack.logical_id_of(handler.function_name) in json.dumps(
            integration["IntegrationUri"]
        )


def test_connect_has_the_lambda_request_authorizer(dev_stack: SynthesizedStack) -> None:
    # Given the WebSocket API's routes and authorizers
    routes = _routes(dev_stack)
    on_api = {"Properties": {"ApiId": {"Ref": _api_id(dev_stack)}}}
    authorizers = dev_stack.template.find_resources("AWS::ApiGatewayV2::Authorizer", on_api)
    authorizer_function = _function(dev_stack, "authorizer_function")

    # Then one REQUEST authorizer calls the authorizer function...
    assert len(authorizers) == 1
    [(authorizer_id, authorizer)] = authorizers.items()
    properties = authorizer["Properties"]
    assert properties["AuthorizerType"] == "REQUEST"
    assert dev_stack.logical_id_of(authorizer_function.function_name) in json.dumps(
        properties["AuthorizerUri"]
    )
    # ...with no identity source, so API Gateway invokes it whether the token comes as
    # `?token=` or as Sec-WebSocket-Protocol (a configured source that is missing means 401)
    assert properties.get("IdentitySource", []) == []

    # And it guards $connect only: API Gateway authorizes a WebSocket once, at connect
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    for key in set(ROUTE_KEYS) - {"$connect"}:
        assert routes[key]["AuthorizationType"] == "NONE"


def test_stage_is_named_by_the_deployment_stage_and_throttled(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    for stack, name in ((dev_stack, "dev"), (prod_stack, "prod")):
        # Given a stage's WebSocket stage
        on_api = {"Properties": {"ApiId": {"Ref": _api_id(stack)}}}
        [stage] = stack.template.find_resources("AWS::ApiGatewayV2::Stage", on_api).values()
        properties = stage["Properties"]
        access_logs = stack.built.stack.websocket_api.access_logs

        # Then it deploys automatically, is throttled, and logs access to its own log group
        assert properties["StageName"] == name
        assert properties["AutoDeploy"] is True
        assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
        assert properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
        assert properties["AccessLogSettings"]["DestinationArn"] == _arn_of(
            stack, access_logs.log_group_name
        )
        assert "$context.connectionId" in properties["AccessLogSettings"]["Format"]


# --- the functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "handler"),
    [
        ("authorizer_function", AUTHORIZER_HANDLER),
        ("handler_function", WS_HANDLER),
        ("dispatcher_function", DISPATCHER_HANDLER),
    ],
)
def test_functions_run_their_handlers_on_the_shared_packaging(
    dev_stack: SynthesizedStack, name: str, handler: str
) -> None:
    # Given one of the WebSocket functions
    properties = _properties(dev_stack, name)
    layer = dev_stack.built.stack.packaging.layer.layer_version_arn

    # Then it runs its handler on Python 3.11 arm64 with the shared layer, traced
    assert properties["Handler"] == handler
    assert properties["Runtime"] == "python3.11"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Layers"] == [{"Ref": dev_stack.logical_id_of(layer)}]
    assert properties["TracingConfig"] == {"Mode": "Active"}


def test_functions_have_exactly_the_environment_their_settings_read(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the three functions' variables
    variables = {
        name: _properties(dev_stack, name)["Environment"]["Variables"] for name in FUNCTIONS
    }
    secrets = dev_stack.built.stack.secrets
    storage = dev_stack.built.stack.storage

    # Then the authorizer gets the auth settings and the resume key's ARN, no table
    assert set(variables["authorizer_function"]) == {
        c.ENV_AUTH_JWKS_URL,
        c.ENV_AUTH_ISSUER,
        c.ENV_AUTH_AUDIENCE,
        c.ENV_AUTH_TENANT_CLAIM,
        c.ENV_RESUME_SIGNING_KEY_SECRET_ARN,
        c.ENV_POWERTOOLS_SERVICE_NAME,
    }
    assert variables["authorizer_function"][c.ENV_RESUME_SIGNING_KEY_SECRET_ARN] == {
        "Ref": dev_stack.logical_id_of(secrets.resume_signing_key.secret_arn)
    }
    # And the handler gets its three tables, the cursor key's ARN, the @connections URL and
    # the JobRunner it lets a cancelled job's execution go on (tested below)
    assert set(variables["handler_function"]) == {
        c.ENV_JOBS_TABLE,
        c.ENV_MESSAGES_TABLE,
        c.ENV_CONNECTIONS_TABLE,
        c.ENV_CURSOR_SECRET_ARN,
        c.ENV_WEBSOCKET_MANAGEMENT_URL,
        c.ENV_STATE_MACHINE_ARN,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
    }
    assert variables["handler_function"][c.ENV_CURSOR_SECRET_ARN] == {
        "Ref": dev_stack.logical_id_of(secrets.cursor_secret.secret_arn)
    }
    # And the dispatcher gets subscribers, the streamed table and the @connections URL
    assert set(variables["dispatcher_function"]) == {
        c.ENV_CONNECTIONS_TABLE,
        c.ENV_MESSAGES_TABLE,
        c.ENV_WEBSOCKET_MANAGEMENT_URL,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
    }
    for name in ("handler_function", "dispatcher_function"):
        env = variables[name]
        assert env[c.ENV_CONNECTIONS_TABLE] == {
            "Ref": dev_stack.logical_id_of(storage.tables["connections"].table_name)
        }
        url = json.dumps(env[c.ENV_WEBSOCKET_MANAGEMENT_URL])
        assert url.startswith('{"Fn::Join": ["", ["https://", {"Ref": "')
        assert _api_id(dev_stack) in url
        assert url.endswith('"/dev"]]}')
    # And no secret value travels in any environment
    for env in variables.values():
        assert c.ENV_RESUME_SIGNING_KEY not in env
        assert c.ENV_CURSOR_SECRET not in env


def test_the_handler_cancels_through_the_job_runner_only(dev_stack: SynthesizedStack) -> None:
    # Given the WebSocket handler and the JobRunner's state machine
    machine = dev_stack.built.stack.job_runner.state_machine
    machine_ref = {"Ref": dev_stack.logical_id_of(machine.state_machine_arn)}

    # When reading its variables and its Step Functions statements
    variables = _properties(dev_stack, "handler_function")["Environment"]["Variables"]
    states = [
        statement
        for statement in _statements(dev_stack, "handler_function")
        if any(action.startswith("states:") for action in _actions(statement))
    ]

    # Then it knows the state machine and may only send a parked execution its token back
    # (a cancelled paused job's), as the HTTP API does: one cancel path, whatever the transport
    assert variables[c.ENV_STATE_MACHINE_ARN] == machine_ref
    assert [(_actions(s), _resources(s)) for s in states] == [
        (["states:SendTaskSuccess"], [machine_ref])
    ]


def test_functions_share_the_http_api_secrets(dev_stack: SynthesizedStack) -> None:
    # Given the stack / Then both APIs use the same two generated secrets, not copies
    stack = dev_stack.built.stack
    assert stack.http_api.resume_signing_key is stack.secrets.resume_signing_key
    assert stack.http_api.cursor_secret is stack.secrets.cursor_secret
    dev_stack.template.resource_count_is("AWS::SecretsManager::Secret", 2)


@pytest.mark.parametrize(
    ("name", "tables"),
    [
        ("authorizer_function", set()),
        ("handler_function", {"jobs", "messages", "connections"}),
        ("dispatcher_function", {"connections"}),
    ],
)
def test_functions_reach_only_their_tables(
    dev_stack: SynthesizedStack, name: str, tables: set[str]
) -> None:
    # Given a function's policy
    statements = _statements(dev_stack, name)
    storage = dev_stack.built.stack.storage

    # When collecting the table ARNs its data-plane DynamoDB actions reach
    granted = {
        json.dumps(resource)
        for statement in statements
        if "dynamodb:PutItem" in _actions(statement)
        for resource in _resources(statement)
        if "Fn::GetAtt" in resource
    }

    # Then they are exactly its tables, never `*`
    expected = {json.dumps(_arn_of(dev_stack, storage.tables[key].table_name)) for key in tables}
    assert granted == expected
    # And `Resource: *` carries only actions without resource-level permissions
    star_actions = {
        action
        for statement in statements
        if statement["Resource"] == "*"
        for action in _actions(statement)
    }
    assert star_actions <= {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:ListStreams",
    }


def test_authorizer_reads_only_the_resume_key(dev_stack: SynthesizedStack) -> None:
    # Given the authorizer's policy
    statements = _statements(dev_stack, "authorizer_function")
    secrets = dev_stack.built.stack.secrets

    # Then its only reads are the resume key, and it has no DynamoDB or @connections access
    secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    assert [_resources(s) for s in secret_reads] == [
        [{"Ref": dev_stack.logical_id_of(secrets.resume_signing_key.secret_arn)}]
    ]
    actions = {action for statement in statements for action in _actions(statement)}
    assert not {a for a in actions if a.startswith(("dynamodb:", "execute-api:"))}


@pytest.mark.parametrize("name", ["handler_function", "dispatcher_function"])
def test_manage_connections_is_scoped_to_this_api_and_stage(
    dev_stack: SynthesizedStack, name: str
) -> None:
    # Given a posting function's policy
    statements = _statements(dev_stack, name)

    # When finding its @connections statements
    manage = [s for s in statements if "execute-api:ManageConnections" in _actions(s)]

    # Then there is one, for POST to this API's dev stage only
    assert len(manage) == 1
    assert _actions(manage[0]) == ["execute-api:ManageConnections"]
    [resource] = _resources(manage[0])
    assert resource != "*"
    parts = resource["Fn::Join"][1]
    assert {"Ref": _api_id(dev_stack)} in parts
    assert parts[-1] == "/dev/POST/@connections/*"
    assert "*" not in json.dumps(parts[:-1])


def test_roles_have_no_managed_policies(dev_stack: SynthesizedStack) -> None:
    # Given the three functions' roles / Then none has a managed policy (each writes to its own
    # log group through an inline grant)
    roles = dev_stack.resources("AWS::IAM::Role")
    for name in FUNCTIONS:
        role = _function(dev_stack, name).role
        assert role is not None
        assert (
            "ManagedPolicyArns" not in roles[dev_stack.logical_id_of(role.role_name)]["Properties"]
        )


# --- the dispatcher's stream --------------------------------------------------------------------


def test_dispatcher_reads_the_messages_stream_with_partial_batch_failures(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the dispatcher's event source mapping
    dispatcher = _function(dev_stack, "dispatcher_function")
    mappings = dev_stack.resources("AWS::Lambda::EventSourceMapping")
    [mapping] = [
        m["Properties"]
        for m in mappings.values()
        if m["Properties"]["FunctionName"]
        == {"Ref": dev_stack.logical_id_of(dispatcher.function_name)}
    ]
    messages = dev_stack.built.stack.storage.tables["messages"]
    queue = dev_stack.built.stack.websocket_api.dead_letters

    # Then it reads the messages table's stream, new records only, INSERTs only
    assert mapping["EventSourceArn"] == _arn_of(dev_stack, messages.table_name, "StreamArn")
    assert mapping["StartingPosition"] == "LATEST"
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": '{"eventName":["INSERT"]}'}]}
    # And batches are bounded, split on error, retried per record and finally dead-lettered
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumRetryAttempts"] == 5
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] <= 3600
    assert mapping["ParallelizationFactor"] == 4
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": _arn_of(dev_stack, queue.queue_url)}
    }


def test_dispatcher_failures_queue_is_encrypted_and_tls_only(dev_stack: SynthesizedStack) -> None:
    # Given the dispatcher's on-failure queue
    queue = dev_stack.built.stack.websocket_api.dead_letters
    queue_id = dev_stack.logical_id_of(queue.queue_url)
    properties = dev_stack.resources("AWS::SQS::Queue")[queue_id]["Properties"]
    policies = dev_stack.resources("AWS::SQS::QueuePolicy").values()

    # Then it is encrypted at rest and refuses any request without TLS
    assert properties["SqsManagedSseEnabled"] is True
    [policy] = [p for p in policies if {"Ref": queue_id} in p["Properties"]["Queues"]]
    [deny] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    # And only the dispatcher may send to it
    senders = [
        name
        for name in FUNCTIONS
        if any("sqs:SendMessage" in _actions(s) for s in _statements(dev_stack, name))
    ]
    assert senders == ["dispatcher_function"]


# --- outputs ----------------------------------------------------------------------------------


def test_stack_outputs_the_websocket_and_management_urls(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack
    outputs = dev_stack.template.find_outputs("*")

    # Then clients find the wss:// URL and operators the @connections endpoint
    wss = json.dumps(outputs["WebSocketUrl"]["Value"])
    management = json.dumps(outputs["WebSocketManagementUrl"]["Value"])
    assert wss.startswith('{"Fn::Join": ["", ["wss://", {"Ref": "')
    assert management.startswith('{"Fn::Join": ["", ["https://", {"Ref": "')
    for url in (wss, management):
        assert _api_id(dev_stack) in url
        assert "execute-api" in url
        assert url.endswith('"/dev"]]}')


# --- cdk-nag ----------------------------------------------------------------------------------


def test_websocket_constructs_pass_cdk_nag_in_every_stage(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    for stack in (dev_stack, prod_stack):
        # Given a stage synthesized with the AwsSolutions plugin (fixture; a finding raises)
        report = json.loads((stack.outdir / "validation-report.json").read_text())

        # Then nothing under the WebSocket API is reported, not even a warning
        paths = [
            construct["constructPath"]
            for plugin in report["pluginReports"]
            for violation in plugin["violations"]
            for construct in violation["violatingConstructs"]
        ]
        assert [path for path in paths if "/WebSocketApi/" in path] == []
        assert all(plugin["conclusion"] == "success" for plugin in report["pluginReports"])
