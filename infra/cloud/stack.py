"""`TetherStack`: the stateless stack of a Tether deployment (code, APIs, workflow, rules).

Thin on purpose: it composes one construct per capability (Lambda packaging, the HTTP API, the
WebSocket API, the job runner, schedules, push, observability, the web console) on top of the
data of a `TetherStatefulStack` (tables, import bucket, secrets), and publishes what an operator
needs after a deploy as outputs. Capability logic lives in the constructs. Everything here can be
destroyed and redeployed without losing data.
"""

from aws_cdk import CrossStackReferences, ReferenceStrength, Stack
from constructs import Construct

from infra.cloud.console import WebConsole
from infra.cloud.http_api import AuthConfig, HttpApi, cors_origins_from_context
from infra.cloud.job_runner import JobRunner
from infra.cloud.observability import Observability
from infra.cloud.packaging import LambdaPackaging
from infra.cloud.push import Push, PushConfig
from infra.cloud.schedules import Schedules
from infra.cloud.stage import DeploymentStage
from infra.cloud.stateful import TetherStatefulStack
from infra.cloud.websocket_api import WebSocketApi
from shared.runner.definition import NOTIFY


class TetherStack(Stack):
    """Everything stateless Tether runs in one account and region, for one stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: DeploymentStage,
        stateful: TetherStatefulStack,
        description: str | None = None,
    ) -> None:
        # No `env`: the stack is environment-agnostic, so synth needs no AWS account, no
        # credentials and no lookups; the account and region come from the deploying profile.
        super().__init__(scope, construct_id, description=description)
        self.stage = stage
        self.stateful = stateful
        self.storage = stateful.storage
        self.secrets = stateful.secrets
        # Every reference to the stateful stack is a strong one (an export and
        # `Fn::ImportValue`), whatever cdk.json's default: CloudFormation then refuses to delete
        # a table, the bucket or a secret a deployed function still uses, and `Fn::ImportValue`
        # is what cfn-lint and every CloudFormation region understand.
        CrossStackReferences.of(self).consume(ReferenceStrength.STRONG)
        # One code asset and one dependencies layer, shared by every function of the stack.
        self.packaging = LambdaPackaging(self, "Packaging")
        auth = AuthConfig.from_context(self)
        push_config = PushConfig.from_context(self)
        # Each function's environment is set by the construct that builds it, from what the
        # constructs built before it hand over: the runner and the schedules come first.
        self.job_runner = JobRunner(
            self,
            "JobRunner",
            storage=self.storage,
            packaging=self.packaging,
            secrets=self.secrets,
            push=push_config,
            removal_policy=stage.removal_policy,
            log_retention=stage.log_retention,
        )
        self.schedules = Schedules(
            self,
            "Schedules",
            storage=self.storage,
            packaging=self.packaging,
            secrets=self.secrets,
            job_runner=self.job_runner,
            imports=stateful.imports.bucket,
            removal_policy=stage.removal_policy,
            log_retention=stage.log_retention,
        )
        # The console's distribution comes before the API, which allows its origin (CORS).
        self.console = WebConsole(self, "Console")
        self.http_api = HttpApi(
            self,
            "HttpApi",
            storage=self.storage,
            packaging=self.packaging,
            secrets=self.secrets,
            auth=auth,
            job_runner=self.job_runner,
            schedules=self.schedules,
            push=push_config,
            removal_policy=stage.removal_policy,
            log_retention=stage.log_retention,
            cors_origins=[self.console.origin, *cors_origins_from_context(self)],
        )
        self.websocket_api = WebSocketApi(
            self,
            "WebSocketApi",
            stage_name=stage.value,
            storage=self.storage,
            packaging=self.packaging,
            secrets=self.secrets,
            auth=auth,
            job_runner=self.job_runner,
            removal_policy=stage.removal_policy,
            log_retention=stage.log_retention,
        )
        self.console.publish(
            http_url=self.http_api.url,
            ws_url=self.websocket_api.url,
            removal_policy=stage.removal_policy,
            log_retention=stage.log_retention,
        )
        self.push = Push(
            self,
            "Push",
            config=push_config,
            storage=self.storage,
            http_function=self.http_api.function,
            notify_function=self.job_runner.functions[NOTIFY],
        )
        self.observability = Observability(
            self,
            "Observability",
            thresholds=stage.alarm_thresholds,
            http_api=self.http_api,
            websocket_api=self.websocket_api,
            job_runner=self.job_runner,
            schedules=self.schedules,
            removal_policy=stage.removal_policy,
        )
