"""The `Push` construct: SNS mobile push for devices and finished jobs.

CloudFormation has no resource for SNS platform applications (they hold the APNs key and the
FCM service account), so they are created once by hand or by a script and their ARNs come from
CDK context: `-c tether:apnsArn=... -c tether:apnsSandboxArn=... -c tether:fcmArn=...`. Any of
them may be left out (the app synthesizes with none): that platform is then not configured, the
functions get no variable and no permission for it, and `POST /devices` for it answers 422
`push_not_configured` (closed, not half-working).

The construct owns the SNS permissions of two functions built elsewhere (their constructs set
their environments, from `PushConfig.environment`):
* the HTTP API function (devices): create endpoints on the configured applications, read,
  repair and delete their endpoints, and the devices table;
* the JobRunner's Notify task (built by `JobRunner`, it is a task of the state machine): read
  and publish to those endpoints only.
Endpoint ARNs are not known in advance (SNS names them), so their permissions are the
application's endpoint prefix, `arn:...:endpoint/{PLATFORM}/{name}/*`, acknowledged for nag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.cloud.storage import Storage
from shared import constants as c
from shared.domain.models import Platform
from shared.domain.push import SNS_KEY

APNS_CONTEXT: Final = "tether:apnsArn"
APNS_SANDBOX_CONTEXT: Final = "tether:apnsSandboxArn"
FCM_CONTEXT: Final = "tether:fcmArn"
GRACE_CONTEXT: Final = "tether:pushGraceSeconds"
CONTEXT_OF: Final = {
    Platform.IOS: APNS_CONTEXT,
    Platform.IOS_SANDBOX: APNS_SANDBOX_CONTEXT,
    Platform.ANDROID: FCM_CONTEXT,
}
ENV_OF: Final = {
    Platform.IOS: c.ENV_PUSH_APNS_ARN,
    Platform.IOS_SANDBOX: c.ENV_PUSH_APNS_SANDBOX_ARN,
    Platform.ANDROID: c.ENV_PUSH_FCM_ARN,
}
_APPLICATION_ARN: Final = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"app/(?P<type>[A-Z_]+)/(?P<name>[A-Za-z0-9_.-]{1,256})$"
)
HTTP_ACTIONS: Final = (
    "sns:GetEndpointAttributes",
    "sns:SetEndpointAttributes",
    "sns:DeleteEndpoint",
)
NOTIFY_ACTIONS: Final = ("sns:GetEndpointAttributes", "sns:Publish")


def endpoints_of(application_arn: str) -> str:
    """The ARN pattern of every endpoint SNS creates on a platform application."""
    return application_arn.replace(":app/", ":endpoint/", 1) + "/*"


@dataclass(frozen=True, slots=True)
class PushConfig:
    """The platform applications (by platform) and the grace period, from CDK context."""

    applications: Mapping[Platform, str] = field(default_factory=dict)
    grace_seconds: int = c.DEFAULT_PUSH_GRACE_SECONDS

    @classmethod
    def from_context(cls, scope: Construct) -> PushConfig:
        applications: dict[Platform, str] = {}
        for platform, key in CONTEXT_OF.items():
            value = scope.node.try_get_context(key)
            if value in (None, ""):
                continue
            match = _APPLICATION_ARN.match(str(value))
            if match is None or match["type"] != SNS_KEY[platform]:
                raise ValueError(
                    f"{key}: expected an SNS platform application ARN "
                    f"(arn:aws:sns:<region>:<account>:app/{SNS_KEY[platform]}/<name>), "
                    f"got {value!r}"
                )
            applications[platform] = str(value)
        grace = scope.node.try_get_context(GRACE_CONTEXT)
        seconds = c.DEFAULT_PUSH_GRACE_SECONDS if grace is None else int(grace)
        if not 0 <= seconds <= 3600:
            raise ValueError(f"{GRACE_CONTEXT}: 0 to 3600 seconds, got {seconds}")
        return cls(applications=applications, grace_seconds=seconds)

    def environment(self) -> dict[str, str]:
        return {ENV_OF[platform]: arn for platform, arn in self.applications.items()}


class Push(Construct):
    """SNS permissions and configuration for the devices routes and the Notify task."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PushConfig,
        storage: Storage,
        http_function: lambda_.Function,
        notify_function: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        applications = sorted(config.applications.values())
        endpoints = [endpoints_of(arn) for arn in applications]
        # POST /devices and DELETE /devices/{id}: the devices table, and the endpoints.
        storage.tables["devices"].grant_read_write_data(http_function)
        if applications:
            http_function.add_to_role_policy(
                iam.PolicyStatement(actions=["sns:CreatePlatformEndpoint"], resources=applications)
            )
            http_function.add_to_role_policy(
                iam.PolicyStatement(actions=list(HTTP_ACTIONS), resources=endpoints)
            )
            notify_function.add_to_role_policy(
                iam.PolicyStatement(actions=list(NOTIFY_ACTIONS), resources=endpoints)
            )
        for function in (http_function, notify_function):
            assert function.role is not None
            for pattern in endpoints:
                Validations.of(function.role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{pattern}]",
                        reason="SNS names each device's endpoint when it is created, so the "
                        "grant is every endpoint of this one configured platform application; "
                        "no other application's and no topic.",
                    )
                )
