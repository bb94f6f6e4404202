"""`shared.services.ports.PushGateway` on SNS mobile push: the only module that talks to SNS.

Registration follows AWS's token-management recipe, so it is idempotent and self-repairing:
create the endpoint (SNS returns the existing one for the same token and attributes), and when
the endpoint exists already, read it and set the token, `Enabled=true` and the owner when any
of them differ. SNS refuses to create an endpoint for a token it knows with other attributes
(a disabled endpoint, another owner) with `InvalidParameter` naming the existing endpoint's ARN;
that endpoint is then repaired instead. Tokens go to SNS only: never to a log or an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from shared.domain.errors import InvalidPushToken
from shared.domain.models import Platform
from shared.services.ports import EndpointDisabled, EndpointState

# "Invalid parameter: Token Reason: Endpoint arn:aws:sns:... already exists with the same
# Token, but different attributes." (AWS's and moto's wording)
_EXISTING_ENDPOINT: Final = re.compile(
    r"Endpoint (arn:[^ ]+) already exists with the same [Tt]oken"
)
_GONE: Final = frozenset({"NotFound", "NotFoundException"})
_DISABLED: Final = frozenset({"EndpointDisabled", "EndpointDisabledException"})


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class SnsPushGateway:
    def __init__(self, client: Any, applications: Mapping[Platform, str]) -> None:
        # `client` is a boto3 "sns" client (the project has no type stubs for SNS);
        # `applications` maps each configured platform to its platform application ARN.
        self._client = client
        self._applications = dict(applications)

    def configured(self, platform: Platform) -> bool:
        return platform in self._applications

    # -- registration -----------------------------------------------------------------------

    def register(
        self, platform: Platform, token: str, *, owner_key: str, endpoint_arn: str | None
    ) -> str:
        if endpoint_arn is not None:
            attributes = self._attributes(endpoint_arn)
            if attributes is not None:
                self._repair(endpoint_arn, attributes, token, owner_key)
                return endpoint_arn
        return self._create(platform, token, owner_key)

    def _create(self, platform: Platform, token: str, owner_key: str) -> str:
        try:
            created = self._client.create_platform_endpoint(
                PlatformApplicationArn=self._applications[platform],
                Token=token,
                CustomUserData=owner_key,
            )
            return str(created["EndpointArn"])
        except ClientError as error:
            existing = _EXISTING_ENDPOINT.search(str(error.response.get("Error", {})))
            if _code(error) != "InvalidParameter":
                raise
            if existing is None:
                # SNS validates the token's shape (e.g. APNs: hex digits): the caller's error.
                raise InvalidPushToken(platform.value) from None
        arn = existing.group(1)
        self._repair(arn, self._attributes(arn) or {}, token, owner_key)
        return arn

    def _repair(self, arn: str, attributes: Mapping[str, str], token: str, owner_key: str) -> None:
        wanted = {"Token": token, "Enabled": "true", "CustomUserData": owner_key}
        current = {key: str(value) for key, value in attributes.items()}
        current["Enabled"] = current.get("Enabled", "true").lower()
        if any(current.get(key) != value for key, value in wanted.items()):
            self._client.set_endpoint_attributes(EndpointArn=arn, Attributes=wanted)

    def _attributes(self, arn: str) -> dict[str, str] | None:
        try:
            answer = self._client.get_endpoint_attributes(EndpointArn=arn)
        except ClientError as error:
            if _code(error) in _GONE:
                return None
            raise
        return {key: str(value) for key, value in answer.get("Attributes", {}).items()}

    # -- delivery ---------------------------------------------------------------------------

    def endpoint(self, endpoint_arn: str) -> EndpointState | None:
        attributes = self._attributes(endpoint_arn)
        if attributes is None:
            return None
        return EndpointState(
            enabled=attributes.get("Enabled", "true").lower() == "true",
            owner_key=attributes.get("CustomUserData"),
        )

    def publish(self, endpoint_arn: str, message: str, attributes: dict[str, str]) -> str:
        try:
            answer = self._client.publish(
                TargetArn=endpoint_arn,
                Message=message,
                MessageStructure="json",
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in attributes.items()
                },
            )
        except ClientError as error:
            if _code(error) in _DISABLED | _GONE:
                raise EndpointDisabled(_code(error)) from None
            raise
        return str(answer["MessageId"])

    def delete(self, endpoint_arn: str) -> None:
        self._client.delete_endpoint(EndpointArn=endpoint_arn)  # idempotent in SNS
