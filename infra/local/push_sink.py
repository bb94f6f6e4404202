"""The local push sink: what would have reached APNs and FCM, recorded and shown.

The local stack's SNS is moto, in this process (in-process mocks and `ThreadedMotoServer`
alike): a publish to a platform endpoint is kept by moto's SNS backend
(`platform_endpoints[arn].messages`, the raw `MessageStructure=json` envelope). The sink reads
those back as `Delivery` values, the platform's own payload parsed out of the envelope, so tests
assert on exactly what Apple or Google would have received, and `tether dev` logs one
structured line per delivery (`PushSink.start()` polls in a thread).

`create_platform_applications` makes the three platform applications (APNs, APNs sandbox, FCM)
the local stack and the tests configure Tether with (`platform_environment`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools import Logger
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from shared import constants as c
from shared.domain.models import Platform
from shared.domain.push import SNS_KEY

APPLICATION_NAMES: Final = {
    Platform.IOS: "tether-local-ios",
    Platform.IOS_SANDBOX: "tether-local-ios-sandbox",
    Platform.ANDROID: "tether-local-android",
}
ENV_OF: Final = {
    Platform.IOS: c.ENV_PUSH_APNS_ARN,
    Platform.IOS_SANDBOX: c.ENV_PUSH_APNS_SANDBOX_ARN,
    Platform.ANDROID: c.ENV_PUSH_FCM_ARN,
}
_PLATFORM_OF_KEY: Final = {key: platform for platform, key in SNS_KEY.items()}


def create_platform_applications(sns: Any) -> dict[Platform, str]:
    """One SNS platform application per platform (moto accepts any credential); their ARNs."""
    arns: dict[Platform, str] = {}
    for platform, name in APPLICATION_NAMES.items():
        created = sns.create_platform_application(
            Name=name,
            Platform=SNS_KEY[platform],
            Attributes={"PlatformCredential": "local", "PlatformPrincipal": "local"},
        )
        arns[platform] = str(created["PlatformApplicationArn"])
    return arns


def platform_environment(arns: Mapping[Platform, str]) -> dict[str, str]:
    """The settings' environment variables naming those applications."""
    return {ENV_OF[platform]: arn for platform, arn in arns.items()}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One push as the platform would have received it."""

    message_id: str
    endpoint_arn: str
    platform: Platform
    payload: dict[str, Any]  # the APNs payload, or the FCM v1 message SNS forwards

    @property
    def job_id(self) -> str | None:
        source = self._fcm().get("data", {}) if self.platform is Platform.ANDROID else self.payload
        value = source.get("jobId")
        return str(value) if value is not None else None

    @property
    def alert(self) -> dict[str, str]:
        """Title and body as the user would see them."""
        if self.platform is Platform.ANDROID:
            return dict(self._fcm().get("notification", {}))
        return dict(self.payload.get("aps", {}).get("alert", {}))

    def _fcm(self) -> dict[str, Any]:
        return dict(self.payload.get("fcmV1Message", {}).get("message", {}))

    def summary(self) -> dict[str, Any]:
        return {
            "platform": self.platform.value,
            "endpoint": self.endpoint_arn.rsplit("/", 1)[-1],
            "jobId": self.job_id,
            **self.alert,
            "bytes": len(json.dumps(self.payload, separators=(",", ":")).encode()),
        }


def _delivery(message_id: str, endpoint_arn: str, raw: str) -> Delivery | None:
    try:
        envelope = json.loads(raw)
    except json.JSONDecodeError:
        return None  # a plain-text publish: not Tether's
    for key, platform in _PLATFORM_OF_KEY.items():
        if key in envelope:
            return Delivery(message_id, endpoint_arn, platform, json.loads(envelope[key]))
    return None


@dataclass
class PushSink:
    """Reads what moto's SNS delivered to platform endpoints; logs each delivery once."""

    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = "us-east-1"
    interval_seconds: float = 0.5
    logger: Logger = field(default_factory=lambda: Logger(service="tether-push-sink"))
    _seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def deliveries(self) -> list[Delivery]:
        """Every push delivered so far, endpoint by endpoint, in the order each received them."""
        backend = sns_backends[self.account_id][self.region]
        found: list[Delivery] = []
        for arn, endpoint in list(backend.platform_endpoints.items()):
            for message_id, raw in list(endpoint.messages.items()):
                delivery = _delivery(message_id, arn, raw)
                if delivery is not None:
                    found.append(delivery)
        return found

    def for_job(self, job_id: str) -> list[Delivery]:
        return [delivery for delivery in self.deliveries() if delivery.job_id == job_id]

    def poll(self) -> list[Delivery]:
        """Deliveries not seen before, each logged as one structured line."""
        new = [d for d in self.deliveries() if d.message_id not in self._seen]
        for delivery in new:
            self._seen.add(delivery.message_id)
            self.logger.info("push delivered", extra={"push": delivery.summary()})
        return new

    def start(self) -> None:
        """Poll in a daemon thread until `stop()` (what `tether dev` runs)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="push-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.poll()  # the last ones still get their line

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.poll()
