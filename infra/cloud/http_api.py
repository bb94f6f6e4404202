"""The `HttpApi` construct: the REST API (docs/http-api.md) on API Gateway (HTTP API) and Lambda.

One Lambda (`functions.http_api.handler`) serves every route behind a `$default` route: the
Powertools resolver in the handler routes, validates and writes the OpenAPI document, so API
Gateway stays a thin proxy and the local gateway can reproduce it exactly. Secrets (the resume
token key, the cursor-signing key) come from the stack's `Secrets` construct and reach the
function as ARNs only; the function reads them at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import jsii
from aws_cdk import (
    Acknowledgment,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import cors
from infra.cloud.checkov import LOG_GROUP_WITHOUT_CMK, acknowledge_checkov
from infra.cloud.job_runner import JobRunner
from infra.cloud.lambda_function import acknowledge_index_access, tether_function
from infra.cloud.packaging import LambdaPackaging
from infra.cloud.push import PushConfig
from infra.cloud.schedules import Schedules
from infra.cloud.secrets import Secrets, grant_key_read
from infra.cloud.storage import Storage
from shared import constants as c

HANDLER: Final = "functions.http_api.handler"
# The tables the HTTP handler touches (jobs and their log, idempotency keys, write limits);
# connections and devices belong to the WebSocket and push functions.
TABLE_KEYS: Final = ("jobs", "messages", "idempotency", "limits")

# CDK context keys for the cloud's token issuer (docs/http-api.md, Auth).
JWKS_URL_CONTEXT: Final = "tether:jwksUrl"
ISSUER_CONTEXT: Final = "tether:issuer"
AUDIENCE_CONTEXT: Final = "tether:audience"
TENANT_CLAIM_CONTEXT: Final = "tether:tenantClaim"
# More browser origins allowed to call the API (CORS), comma-separated: a web app of yours.
CORS_ORIGINS_CONTEXT: Final = "tether:corsOrigins"

# PLACEHOLDERS, override them with `-c tether:jwksUrl=... -c tether:issuer=...`: they let the
# app synthesize with no configuration, and a stack deployed with them rejects every user token
# (no such user pool), which fails closed.
_PLACEHOLDER_ISSUER: Final = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_REPLACEME"
PLACEHOLDER_JWKS_URL: Final = f"{_PLACEHOLDER_ISSUER}/.well-known/jwks.json"
PLACEHOLDER_ISSUER: Final = _PLACEHOLDER_ISSUER

# One JSON object per request; no headers, so no bearer token ever reaches the access log.
_ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """How the cloud verifies user tokens: the issuer's JWKS and the claims Tether reads."""

    jwks_url: str
    issuer: str
    audience: str
    tenant_claim: str

    @classmethod
    def from_context(cls, scope: Construct) -> AuthConfig:
        def read(key: str, default: str) -> str:
            value = scope.node.try_get_context(key)
            return default if value is None else str(value)

        return cls(
            jwks_url=read(JWKS_URL_CONTEXT, PLACEHOLDER_JWKS_URL),
            issuer=read(ISSUER_CONTEXT, PLACEHOLDER_ISSUER),
            audience=read(AUDIENCE_CONTEXT, c.DEFAULT_AUTH_AUDIENCE),
            tenant_claim=read(TENANT_CLAIM_CONTEXT, c.DEFAULT_TENANT_CLAIM),
        )

    def environment(self) -> dict[str, str]:
        return {
            c.ENV_AUTH_JWKS_URL: self.jwks_url,
            c.ENV_AUTH_ISSUER: self.issuer,
            c.ENV_AUTH_AUDIENCE: self.audience,
            c.ENV_AUTH_TENANT_CLAIM: self.tenant_claim,
        }


class HttpApi(Construct):
    """API Gateway HTTP API → one Lambda proxy (payload 2.0) → the four tables it needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        packaging: LambdaPackaging,
        secrets: Secrets,
        auth: AuthConfig,
        job_runner: JobRunner,
        schedules: Schedules,
        push: PushConfig,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        cors_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.resume_signing_key = secrets.resume_signing_key
        self.cursor_secret = secrets.cursor_secret
        state_machine = job_runner.state_machine
        self.function = self._function(
            storage,
            packaging,
            self._environment(storage, auth, state_machine.state_machine_arn, schedules, push),
            removal_policy=removal_policy,
            log_retention=log_retention,
        )
        for key in TABLE_KEYS:
            storage.tables[key].grant_read_write_data(self.function)
        for secret in (self.resume_signing_key, self.cursor_secret):
            grant_key_read(secret, self.function)
        # POST /jobs starts the execution; resume and cancel release a parked AwaitResume.
        state_machine.grant(self.function, "states:StartExecution", "states:SendTaskSuccess")
        schedules.let_schedule(self.function)

        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="Tether HTTP API (docs/http-api.md)",
            # The stage below replaces the default one, so it can have access logs.
            create_default_stage=False,
            cors_preflight=_cors(cors_origins),
        )
        # `$default` catches every method and path: the handler's resolver routes. No API
        # Gateway authorizer, on purpose: the handler authenticates with the shared
        # Authenticator, which is what lets it answer the exact problem+json statuses of
        # docs/http-api.md (401 for a bad token, 403 for a missing scope, 404 for another tenant's
        # job, resume tokens scoped to one job), which an authorizer's bare 401/403 cannot.
        self.route = apigwv2.HttpRoute(
            self,
            "DefaultRoute",
            http_api=self.api,
            route_key=apigwv2.HttpRouteKey.DEFAULT,
            integration=integrations.HttpLambdaIntegration(
                "Handler",
                self.function,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            ),
        )
        Validations.of(self.route).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-APIG4",
                reason="Authentication happens in the handler (shared Authenticator: JWKS user "
                "tokens and per-job resume tokens) so it can answer exact 401/403/404 "
                "problem+json and keep tenants from learning that another tenant's job exists.",
            )
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        acknowledge_checkov(self.access_logs, LOG_GROUP_WITHOUT_CMK)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            auto_deploy=True,
            access_log_settings=AccessLogSettings(self.access_logs),
            # A ceiling for the whole API in front of the per-tenant write limit in the handler
            # (which answers 429 with Retry-After): this one protects the account's Lambda
            # concurrency from a flood before any code runs.
            throttle=apigwv2.ThrottleSettings(rate_limit=500, burst_limit=1000),
        )
        self.url = self.stage.url
        CfnOutput(
            scope,
            "HttpApiUrl",
            value=self.url,
            description="Base URL of the Tether HTTP API (GET /openapi.json describes it)",
        )

    def _function(
        self,
        storage: Storage,
        packaging: LambdaPackaging,
        environment: dict[str, str],
        *,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> lambda_.Function:
        function = tether_function(
            self,
            "Function",
            handler=HANDLER,
            description="Tether HTTP API: the REST routes",
            packaging=packaging,
            environment=environment,
            memory_size=512,
            timeout=Duration.seconds(10),
            removal_policy=removal_policy,
            log_retention=log_retention,
        )
        assert function.role is not None
        acknowledge_index_access(
            function.role,
            storage,
            {
                key: f"The {key} table's own GSIs (index/*): the handler queries them (e.g. "
                "jobs byStatus/byType for GET /jobs); no other table's indexes are reachable."
                for key in TABLE_KEYS
            },
        )
        return function

    def _environment(
        self,
        storage: Storage,
        auth: AuthConfig,
        state_machine_arn: str,
        schedules: Schedules,
        push: PushConfig,
    ) -> dict[str, str]:
        """The function's whole environment, here only (no other construct adds to it)."""
        return {
            **storage.function_environment(),
            **auth.environment(),
            c.ENV_RESUME_SIGNING_KEY_SECRET_ARN: self.resume_signing_key.secret_arn,
            c.ENV_CURSOR_SECRET_ARN: self.cursor_secret.secret_arn,
            c.ENV_STATE_MACHINE_ARN: state_machine_arn,
            **schedules.http_environment(),
            **push.environment(),
            c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
            c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
        }


def cors_origins_from_context(scope: Construct) -> list[str]:
    """The extra origins of `-c tether:corsOrigins=https://app.example.com,https://...`."""
    value = scope.node.try_get_context(CORS_ORIGINS_CONTEXT)
    return [origin.strip() for origin in str(value or "").split(",") if origin.strip()]


def _cors(origins: Sequence[str]) -> apigwv2.CorsPreflightOptions | None:
    """`infra.cors`'s policy for API Gateway, which answers preflights and adds the headers
    itself (no OPTIONS route; the local gateway does the same with `CorsPolicy`)."""
    if not origins:
        return None
    return apigwv2.CorsPreflightOptions(
        allow_origins=list(origins),
        allow_methods=[apigwv2.CorsHttpMethod(method) for method in cors.ALLOW_METHODS],
        allow_headers=list(cors.ALLOW_HEADERS),
        expose_headers=list(cors.EXPOSE_HEADERS),
        max_age=Duration.seconds(cors.MAX_AGE_SECONDS),
    )


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogSettings:
    """Stage access logs: JSON lines (`log_format`) into a log group of the stack."""

    def __init__(self, log_group: logs.ILogGroup, log_format: str = _ACCESS_LOG_FORMAT) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(self._format)
