"""The `WebSocketApi` construct: live delivery on API Gateway WebSocket and Lambda.

Three functions. The authorizer (`functions.authorizer.handler`) verifies the token once, at
`$connect`. The WebSocket handler (`functions.ws_handler.handler`) serves `$connect`,
`$disconnect`, `$default` and the client actions (route key `$request.body.action`). The
dispatcher (`functions.dispatcher.handler`) reads the messages table's stream and posts each new
message to the job's live subscribers through the stage's `@connections` endpoint. Both posting
functions may `POST @connections/*` on this API and stage only.
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import (
    Acknowledgment,
    CfnElement,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.cloud.checkov import LOG_GROUP_WITHOUT_CMK, acknowledge_checkov
from infra.cloud.http_api import AccessLogSettings, AuthConfig
from infra.cloud.job_runner import JobRunner
from infra.cloud.lambda_function import (
    XRAY_ONLY_WILDCARD,
    acknowledge_index_access,
    tether_function,
)
from infra.cloud.packaging import LambdaPackaging
from infra.cloud.queues import dead_letter_queue
from infra.cloud.secrets import Secrets, grant_key_read
from infra.cloud.storage import Storage
from shared import constants as c

AUTHORIZER_HANDLER: Final = "functions.authorizer.handler"
WS_HANDLER: Final = "functions.ws_handler.handler"
DISPATCHER_HANDLER: Final = "functions.dispatcher.handler"

ROUTE_SELECTION_EXPRESSION: Final = "$request.body.action"
# The client actions (docs/protocol.md), each its own route (per-route metrics and
# throttling), all on the one handler, whose session model validates the body. `$default`
# answers anything else with an `error` frame instead of API Gateway's bare "Forbidden".
ACTION_ROUTES: Final = ("subscribe", "unsubscribe", "ack", "cancel", "ping")
ROUTE_KEYS: Final = ("$connect", "$disconnect", "$default", *ACTION_ROUTES)

# Tables each function touches: the handler registers connections and subscriptions, reads jobs
# and replays the log, and writes a cancel request; the dispatcher reads subscribers (connections
# byJob) and deletes connections that answer 410 Gone. The authorizer reads no table.
HANDLER_TABLE_KEYS: Final = ("jobs", "messages", "connections")
DISPATCHER_TABLE_KEYS: Final = ("messages", "connections")

# Stage throttling, across all connections: client actions are a few per connection per minute
# (subscribe, ack, ping), so this only stops a runaway client loop from reaching Lambda and
# DynamoDB at full account concurrency. $connect counts too, which bounds reconnect storms.
THROTTLE_RATE_LIMIT: Final = 500  # requests per second, steady
THROTTLE_BURST_LIMIT: Final = 1000

# The dispatcher's stream settings (see `_dispatcher_source` for the reasons).
DISPATCH_BATCH_SIZE: Final = 100
DISPATCH_BATCHING_WINDOW: Final = Duration.seconds(1)
DISPATCH_RETRY_ATTEMPTS: Final = 5
DISPATCH_MAX_RECORD_AGE: Final = Duration.minutes(10)
DISPATCH_PARALLELIZATION_FACTOR: Final = 4

# One JSON object per event. WebSocket access logs have no path or query string variables, so
# a `?token=` never reaches them; no headers either (Sec-WebSocket-Protocol may carry a token).
_ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "connectionId": "$context.connectionId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "integrationLatencyMs": "$context.integrationLatency",
        "error": "$context.error.message",
        "authorizerError": "$context.authorizer.error",
    }
)


class WebSocketApi(Construct):
    """API Gateway WebSocket API → authorizer + handler Lambdas; messages stream → dispatcher."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        storage: Storage,
        packaging: LambdaPackaging,
        secrets: Secrets,
        auth: AuthConfig,
        job_runner: JobRunner,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self._storage = storage
        state_machine = job_runner.state_machine
        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            description="Tether WebSocket API: live job messages (docs/protocol.md)",
            route_selection_expression=ROUTE_SELECTION_EXPRESSION,
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        acknowledge_checkov(self.access_logs, LOG_GROUP_WITHOUT_CMK)
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=THROTTLE_RATE_LIMIT, burst_limit=THROTTLE_BURST_LIMIT
            ),
            access_log_settings=AccessLogSettings(self.access_logs, _ACCESS_LOG_FORMAT),
        )
        # https://{apiId}.execute-api.{region}.amazonaws.com/{stage}: where frames are POSTed.
        self.management_url = self.stage.callback_url
        self.url = self.stage.url

        def function(
            construct_id: str,
            handler: str,
            description: str,
            environment: dict[str, str],
            timeout: Duration,
            wildcard_reason: str = XRAY_ONLY_WILDCARD,
        ) -> lambda_.Function:
            return tether_function(
                self,
                construct_id,
                handler=handler,
                description=description,
                packaging=packaging,
                environment=environment,
                memory_size=512,
                timeout=timeout,
                removal_policy=removal_policy,
                log_retention=log_retention,
                wildcard_reason=wildcard_reason,
            )

        self.authorizer_function = function(
            "AuthorizerFunction",
            AUTHORIZER_HANDLER,
            "Tether WebSocket $connect authorizer: user JWTs and resume tokens",
            {
                **auth.environment(),
                c.ENV_RESUME_SIGNING_KEY_SECRET_ARN: secrets.resume_signing_key.secret_arn,
                c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
            },
            Duration.seconds(10),
        )
        grant_key_read(secrets.resume_signing_key, self.authorizer_function)

        self.handler_function = function(
            "HandlerFunction",
            WS_HANDLER,
            "Tether WebSocket handler: connect, disconnect and the client actions",
            {
                **storage.function_environment(*HANDLER_TABLE_KEYS),
                c.ENV_CURSOR_SECRET_ARN: secrets.cursor_secret.secret_arn,
                c.ENV_WEBSOCKET_MANAGEMENT_URL: self.management_url,
                c.ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn,
                c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
            },
            # Under API Gateway's 29 s integration limit; a subscribe replays at most the
            # 24 h log in a few DynamoDB pages.
            Duration.seconds(10),
        )
        for key in HANDLER_TABLE_KEYS:
            storage.tables[key].grant_read_write_data(self.handler_function)
        grant_key_read(secrets.cursor_secret, self.handler_function)
        self._grant_post_to_connections(self.handler_function, stage_name)
        # Cancel over WebSocket as over HTTP: a paused job's parked execution is let go
        # (SendTaskSuccess), so it ends and frees its run slot (`JobRunner.cancel`).
        state_machine.grant(self.handler_function, "states:SendTaskSuccess")

        self.dispatcher_function = function(
            "DispatcherFunction",
            DISPATCHER_HANDLER,
            "Tether dispatcher: messages stream to live WebSocket subscribers",
            {
                **storage.function_environment(*DISPATCHER_TABLE_KEYS),
                c.ENV_WEBSOCKET_MANAGEMENT_URL: self.management_url,
                c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE_NAME,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
            },
            # A batch of 100 messages, each posted to its subscribers with the poster's retries.
            Duration.seconds(60),
            wildcard_reason="X-Ray PutTraceSegments/PutTelemetryRecords (tracing ACTIVE) and "
            "dynamodb:ListStreams (added by the stream event source, a list action) support no "
            "resource-level permissions; the stream reads themselves are scoped to the messages "
            "table's stream ARN.",
        )
        storage.tables["connections"].grant_read_write_data(self.dispatcher_function)
        self._grant_post_to_connections(self.dispatcher_function, stage_name)
        self.dead_letters = self._dead_letter_queue()
        self.dispatcher_function.add_event_source(self._dispatcher_source())

        self._add_routes()
        self._acknowledge_index_access()
        CfnOutput(
            scope,
            "WebSocketUrl",
            value=self.url,
            description="WebSocket URL for clients (wss://; token as ?token= or subprotocol)",
        )
        CfnOutput(
            scope,
            "WebSocketManagementUrl",
            value=self.management_url,
            description="@connections endpoint of the WebSocket stage (where frames are posted)",
        )

    def _add_routes(self) -> None:
        integration = integrations.WebSocketLambdaIntegration("Handler", self.handler_function)
        # No identity source, on purpose. API Gateway answers 401 without calling the authorizer
        # when any configured identity source is missing, and they are ANDed: with
        # `route.request.querystring.token` a client sending its token as a subprotocol
        # (Sec-WebSocket-Protocol) would be refused, and listing both would require
        # both. An empty list is allowed for REQUEST authorizers and means "always invoke";
        # the function itself takes the token from either place and refuses when neither has
        # one. The cost is one invocation per tokenless connect; nothing is lost to caching,
        # since a WebSocket authorizer runs once per connection anyway.
        authorizer = authorizers.WebSocketLambdaAuthorizer(
            "ConnectAuthorizer", self.authorizer_function, identity_source=[]
        )
        self.routes: dict[str, apigwv2.WebSocketRoute] = {
            "$connect": self.api.add_route(
                "$connect", integration=integration, authorizer=authorizer
            )
        }
        for route_key in ROUTE_KEYS[1:]:
            route = self.api.add_route(route_key, integration=integration)
            Validations.of(route).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-APIG4",
                    reason="API Gateway authorizes a WebSocket once, at $connect (Lambda REQUEST "
                    "authorizer); other routes of the connection cannot take an authorizer. "
                    "The handler acts as the principal stored with the connection at $connect.",
                )
            )
            self.routes[route_key] = route

    def _grant_post_to_connections(self, function: lambda_.Function, stage_name: str) -> None:
        # POST only (post_to_connection), on this API and stage only; narrower than
        # `stage.grant_management_api_access`, which also allows GET and DELETE on any method.
        arn = Stack.of(self).format_arn(
            service="execute-api",
            resource=self.api.api_id,
            resource_name=f"{stage_name}/POST/@connections/*",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[arn])
        )
        api = self.api.node.default_child
        assert isinstance(api, CfnElement)
        api_id = Stack.of(self).get_logical_id(api)
        assert function.role is not None
        Validations.of(function.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:"
                f"<AWS::Region>:<AWS::AccountId>:<{api_id}>/{stage_name}/POST/@connections/*]",
                reason="Connection ids are created by API Gateway at run time; the wildcard "
                "covers POST to connections of this API and stage only.",
            )
        )

    def _dead_letter_queue(self) -> sqs.Queue:
        # Lambda writes the failed batch's shard and sequence range, not the messages; the log
        # keeps them 24 h, the queue keeps the pointers for an incident review.
        return dead_letter_queue(
            self,
            "DispatcherFailures",
            removal_policy=RemovalPolicy.DESTROY,
            why_no_dlq="This queue is itself the dispatcher's on-failure destination (a DLQ); "
            "a DLQ of a DLQ would only move the same failure records once more.",
        )

    def _dispatcher_source(self) -> event_sources.DynamoEventSource:
        return event_sources.DynamoEventSource(
            self._storage.tables["messages"],
            # Live delivery only: a new dispatcher need not post the past; clients replay it.
            starting_position=lambda_.StartingPosition.LATEST,
            batch_size=DISPATCH_BATCH_SIZE,
            # Up to 1 s of added latency, in exchange for fuller batches during bursts (many
            # jobs reporting progress at once) instead of one invocation per poll.
            max_batching_window=DISPATCH_BATCHING_WINDOW,
            # Only INSERTs are news. TTL deletions (REMOVE) arrive daily for every message and
            # would otherwise invoke the dispatcher for nothing.
            filters=[
                lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})
            ],
            # Partial batch responses (Powertools BatchProcessor) retry from the first failed
            # record; bisecting isolates a poison record instead of replaying 100 each time.
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=DISPATCH_RETRY_ATTEMPTS,
            # A frame 10 minutes late is worth less than the shard it holds back: a client that
            # missed it recovers by replay (subscribe with `since`); the log keeps it 24 h.
            max_record_age=DISPATCH_MAX_RECORD_AGE,
            # Lambda keeps records of one partition key (jobKey) in order at any factor, so a
            # job's seqs still arrive in order; 4 concurrent batches per shard let one job's
            # slow or failing subscribers delay only a quarter of the shard's other jobs.
            parallelization_factor=DISPATCH_PARALLELIZATION_FACTOR,
            on_failure=event_sources.SqsDlq(self.dead_letters),
        )

    def _acknowledge_index_access(self) -> None:
        handler_role = self.handler_function.role
        dispatcher_role = self.dispatcher_function.role
        assert handler_role is not None
        assert dispatcher_role is not None
        acknowledge_index_access(
            handler_role,
            self._storage,
            {
                "jobs": "The jobs table's own GSIs (index/*), added by the table grant: they "
                "project ALL attributes, so they expose no item the table grant does not.",
                "connections": "The connections table's own byJob GSI (index/*), added by the "
                "table grant; it projects ALL attributes of the same table.",
            },
        )
        acknowledge_index_access(
            dispatcher_role,
            self._storage,
            {
                "connections": "The connections table's own byJob GSI (index/*): the dispatcher "
                "queries it for a job's live subscribers; no other table's indexes are reachable.",
            },
        )
