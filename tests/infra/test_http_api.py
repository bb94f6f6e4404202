"""CDK tests of the `HttpApi` construct and the Lambda packaging it runs on.

The environment keys are derived from `shared.constants`, the module the handlers' settings read,
so a key renamed on one side fails here; the policy is checked for exactly the four tables and
the two secrets the HTTP handler needs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_cdk.assertions import Match

from infra.cloud.http_api import HANDLER, TABLE_KEYS
from infra.cloud.schedules import HTTP_ENVIRONMENT_KEYS
from shared import constants as c

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

FUNCTION = "AWS::Lambda::Function"
POLICY = "AWS::IAM::Policy"


def _http_function(stack: SynthesizedStack) -> dict[str, Any]:
    function = stack.built.stack.http_api.function
    resource = stack.resources(FUNCTION)[stack.logical_id_of(function.function_name)]
    properties = resource["Properties"]
    assert isinstance(properties, dict)
    return properties


def _function_statements(stack: SynthesizedStack) -> list[dict[str, Any]]:
    role = stack.built.stack.http_api.function.role
    assert role is not None
    role_id = stack.logical_id_of(role.role_name)
    statements: list[dict[str, Any]] = []
    for policy in stack.resources(POLICY).values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _arn_of(stack: SynthesizedStack, token: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [stack.logical_id_of(token), "Arn"]}


def test_function_runs_the_http_handler_on_python_311_arm64(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack / When reading the HTTP function
    properties = _http_function(dev_stack)

    # Then it runs the Powertools handler with the code asset and the dependencies layer
    assert properties["Handler"] == HANDLER == "functions.http_api.handler"
    assert properties["Runtime"] == "python3.11"
    assert properties["Architectures"] == ["arm64"]
    assert properties["MemorySize"] == 512
    assert properties["Timeout"] == 10
    assert properties["TracingConfig"] == {"Mode": "Active"}
    layer = dev_stack.built.stack.packaging.layer.layer_version_arn
    assert properties["Layers"] == [{"Ref": dev_stack.logical_id_of(layer)}]


def test_function_environment_is_exactly_what_the_handler_reads(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the storage's table variables and the HTTP API's own settings
    storage = dev_stack.built.stack.storage
    http_api = dev_stack.built.stack.http_api
    expected = set(storage.function_environment()) | {
        c.ENV_AUTH_JWKS_URL,
        c.ENV_AUTH_ISSUER,
        c.ENV_AUTH_AUDIENCE,
        c.ENV_AUTH_TENANT_CLAIM,
        c.ENV_RESUME_SIGNING_KEY_SECRET_ARN,
        c.ENV_CURSOR_SECRET_ARN,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
        c.ENV_STATE_MACHINE_ARN,  # the JobRunner's (tested in test_job_runner)
        *HTTP_ENVIRONMENT_KEYS,  # schedules (tested in test_schedules)
    }

    # When reading the function's variables
    variables = _http_function(dev_stack)["Environment"]["Variables"]

    # Then the keys match exactly, secrets arrive as ARNs (Refs), never as values
    assert set(variables) == expected
    assert variables[c.ENV_RESUME_SIGNING_KEY_SECRET_ARN] == {
        "Ref": dev_stack.logical_id_of(http_api.resume_signing_key.secret_arn)
    }
    assert variables[c.ENV_CURSOR_SECRET_ARN] == {
        "Ref": dev_stack.logical_id_of(http_api.cursor_secret.secret_arn)
    }
    assert c.ENV_RESUME_SIGNING_KEY not in variables
    assert c.ENV_CURSOR_SECRET not in variables
    assert variables[c.ENV_POWERTOOLS_SERVICE_NAME] == "tether"
    assert variables[c.ENV_POWERTOOLS_METRICS_NAMESPACE] == "Tether"
    assert variables[c.ENV_AUTH_JWKS_URL].startswith("https://")


def test_policy_grants_only_its_tables_and_the_two_secrets(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the HTTP function's role
    storage = dev_stack.built.stack.storage
    http_api = dev_stack.built.stack.http_api

    # When reading its policy statements
    statements = _function_statements(dev_stack)

    # Then DynamoDB actions reach the jobs, messages, idempotency and limits tables (and the
    # jobs table's indexes), the schedules table (granted by the Schedules construct) and the
    # devices table (granted by `Push`, for /devices) only,
    # never `*`
    dynamo_resources: list[Any] = []
    for statement in statements:
        actions = statement["Action"]
        actions = actions if isinstance(actions, list) else [actions]
        if any(action.startswith("dynamodb:") for action in actions):
            resources = statement["Resource"]
            dynamo_resources.extend(resources if isinstance(resources, list) else [resources])
    assert "*" not in dynamo_resources
    keys = (*TABLE_KEYS, "schedules", "devices")
    table_arns = [_arn_of(dev_stack, storage.tables[key].table_name) for key in keys]
    plain = [resource for resource in dynamo_resources if "Fn::GetAtt" in resource]
    assert sorted(map(json.dumps, plain)) == sorted(map(json.dumps, table_arns))
    assert len(TABLE_KEYS) == 4
    for other in ("connections",):
        other_id = dev_stack.logical_id_of(storage.tables[other].table_name)
        assert other_id not in json.dumps(statements)

    # And Secrets Manager reads reach the two generated secrets only
    secret_resources = [
        statement["Resource"]
        for statement in statements
        if "secretsmanager:GetSecretValue" in statement["Action"]
    ]
    expected_secrets = [
        {"Ref": dev_stack.logical_id_of(secret.secret_arn)}
        for secret in (http_api.resume_signing_key, http_api.cursor_secret)
    ]
    assert len(secret_resources) == 1
    assert sorted(map(json.dumps, secret_resources[0])) == sorted(map(json.dumps, expected_secrets))

    # And the only `Resource: *` is X-Ray's, which has no resource-level permissions
    star_actions = {
        action
        for statement in statements
        if statement["Resource"] == "*"
        for action in statement["Action"]
    }
    assert star_actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_role_has_no_managed_policies(dev_stack: SynthesizedStack) -> None:
    # Given the HTTP function's role / Then it writes to its own log group, not via a managed
    # policy that lets it create and write any log group
    role = dev_stack.built.stack.http_api.function.role
    assert role is not None
    resource = dev_stack.resources("AWS::IAM::Role")[dev_stack.logical_id_of(role.role_name)]
    assert "ManagedPolicyArns" not in resource["Properties"]


def test_secrets_are_generated_64_char_keys_without_punctuation(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the synthesized stack / Then both signing keys are generated by Secrets Manager
    dev_stack.template.resource_count_is("AWS::SecretsManager::Secret", 2)
    dev_stack.template.all_resources_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": {
                "PasswordLength": 64,
                "ExcludePunctuation": True,
                "IncludeSpace": False,
            }
        },
    )


def test_http_api_proxies_every_route_to_the_function_with_payload_2(
    dev_stack: SynthesizedStack,
) -> None:
    # Given the synthesized stack
    template = dev_stack.template
    function = dev_stack.built.stack.http_api.function

    # Then one HTTP API sends `$default` (every method and path) to the function, payload 2.0,
    # with no API Gateway authorizer: the handler authenticates (the WebSocket API's routes and
    # authorizer are tested in test_websocket_api)
    api_id = dev_stack.logical_id_of(dev_stack.built.stack.http_api.api.api_id)
    on_http_api = {"Properties": {"ApiId": {"Ref": api_id}}}
    http_apis = template.find_resources(
        "AWS::ApiGatewayV2::Api", {"Properties": {"ProtocolType": "HTTP"}}
    )
    assert list(http_apis) == [api_id]
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {
            "IntegrationType": "AWS_PROXY",
            "PayloadFormatVersion": "2.0",
            "IntegrationUri": _arn_of(dev_stack, function.function_name),
        },
    )
    routes = template.find_resources("AWS::ApiGatewayV2::Route", on_http_api)
    assert [
        (route["Properties"]["RouteKey"], route["Properties"]["AuthorizationType"])
        for route in routes.values()
    ] == [("$default", "NONE")]
    assert template.find_resources("AWS::ApiGatewayV2::Authorizer", on_http_api) == {}


def test_default_stage_deploys_automatically_and_logs_access(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack / Then the `$default` stage auto-deploys and writes access logs
    # to the stack's own log group
    access_logs = dev_stack.built.stack.http_api.access_logs
    dev_stack.template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "AccessLogSettings": {
                "DestinationArn": _arn_of(dev_stack, access_logs.log_group_name),
                "Format": Match.string_like_regexp(r"\$context\.requestId"),
            },
        },
    )


def test_stack_outputs_the_api_url(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack / Then the API's base URL is an output
    output = dev_stack.template.find_outputs("HttpApiUrl")["HttpApiUrl"]
    assert "execute-api" in json.dumps(output["Value"])


def test_log_retention_depends_on_stage(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given each stage / Then its function and access logs keep a week in dev, three months in
    # prod (and so does every other log group of the stack)
    for stack, days in ((dev_stack, 7), (prod_stack, 90)):
        http_api = stack.built.stack.http_api
        function_logs = http_api.function.log_group.log_group_name
        http_groups = {
            stack.logical_id_of(function_logs),
            stack.logical_id_of(http_api.access_logs.log_group_name),
        }
        groups = stack.resources("AWS::Logs::LogGroup")
        assert http_groups <= set(groups)
        assert {group["Properties"]["RetentionInDays"] for group in groups.values()} == {days}


def test_code_asset_holds_only_the_application_packages(dev_stack: SynthesizedStack) -> None:
    # Given the staged code asset of the synthesized app
    packaging = dev_stack.built.stack.packaging
    asset = dev_stack.outdir / packaging.code_asset.asset_path

    # Then it holds `functions` and `shared` and nothing else (no tests, infra, venv, caches)
    assert sorted(path.name for path in asset.iterdir()) == ["functions", "shared"]
    assert (asset / "functions" / "http_api.py").is_file()
    assert not list(asset.rglob("__pycache__"))


def test_template_tests_use_the_placeholder_layer(dev_stack: SynthesizedStack) -> None:
    # Given the test synth (tether:bundle=false) / Then no dependencies were downloaded
    packaging = dev_stack.built.stack.packaging
    assert packaging.bundled is False
    layer = dev_stack.outdir / packaging.layer_asset.asset_path
    assert [path.name for path in (layer / "python").iterdir()] == ["PLACEHOLDER.txt"]


def test_the_http_stage_is_throttled(dev_stack: SynthesizedStack) -> None:
    stages = dev_stack.template.find_resources("AWS::ApiGatewayV2::Stage")
    http = [
        props["Properties"]
        for props in stages.values()
        if props["Properties"].get("StageName") == "$default"
    ]
    assert len(http) == 1
    settings = http[0]["DefaultRouteSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (500, 1000)
