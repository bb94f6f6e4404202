"""Push notifications for finished jobs: devices, the decision, and the payloads.

Pure: what a device is, whether a finished job should push, and exactly what APNs, the APNs
sandbox and FCM receive, as the one SNS `MessageStructure=json` document. Success and failure
differ in title, body, sound and category; the body carries the counters. The APNs payload is
kept within Apple's 4 KB by shortening the body (the only free text) on whole characters, so
the JSON is never cut.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, Field

from shared.domain.models import (
    Identifier,
    JobRecord,
    JobState,
    JobStatus,
    Platform,
    PushPolicy,
    TetherModel,
)

APNS_MAX_PAYLOAD_BYTES: Final = 4096
# FCM allows 4,000 bytes of user payload; kept to the same budget so both bodies match.
FCM_MAX_PAYLOAD_BYTES: Final = 4000
DEEP_LINK_BASE: Final = "tether://jobs/"
CATEGORY_COMPLETED: Final = "JOB_COMPLETED"
CATEGORY_FAILED: Final = "JOB_FAILED"
SOUND_COMPLETED: Final = "job_completed.caf"
SOUND_FAILED: Final = "job_failed.caf"
ELLIPSIS: Final = "…"
PUSHED_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})
# The SNS message key of each platform (what the platform application's type is called).
SNS_KEY: Final = {
    Platform.IOS: "APNS",
    Platform.IOS_SANDBOX: "APNS_SANDBOX",
    Platform.ANDROID: "GCM",
}

# What a device token may look like: APNs tokens are 64 hex digits, FCM tokens ~160 URL-safe
# characters; 4 KB is far above either and keeps junk out.
PushToken = Annotated[str, Field(min_length=8, max_length=4096, pattern=r"^[A-Za-z0-9:_.\-]+$")]
LocaleTag = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")
]


class DeviceRegistration(TetherModel):
    """POST /devices: a push token for the caller, on one platform."""

    platform: Platform
    token: PushToken
    locale: LocaleTag | None = None
    device_id: Identifier | None = Field(
        default=None,
        description="the id a previous registration returned: re-register a changed token "
        "under it (without it, the id is derived from the token)",
    )


class Device(TetherModel):
    """A registered push endpoint of one user. The token itself is never stored here."""

    device_id: Identifier
    tenant_id: Identifier
    owner_id: Identifier
    platform: Platform
    endpoint_arn: str = Field(min_length=1, max_length=1024)
    locale: str | None = None
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=256)
    created_at: AwareDatetime
    updated_at: AwareDatetime


class DeviceView(TetherModel):
    """What the API shows of a device: no token, no endpoint ARN."""

    device_id: Identifier
    platform: Platform
    locale: str | None = None
    enabled: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @classmethod
    def of(cls, device: Device) -> DeviceView:
        return cls(
            device_id=device.device_id,
            platform=device.platform,
            locale=device.locale,
            enabled=device.enabled,
            created_at=device.created_at,
            updated_at=device.updated_at,
        )


def owner_key(tenant_id: str, owner_id: str) -> str:
    """Whose a device is: its table partition and, on SNS, its endpoint's CustomUserData."""
    return f"{tenant_id}#{owner_id}"


def wants_push(job: JobRecord) -> bool:
    """Whether the JobRunner's Notify step should run for this job at all.

    Completed and failed only: a cancelled job ended because its user (or an operator) asked,
    so a push would announce what they just did. Never twice, and never with policy `never`.
    """
    return (
        job.status in PUSHED_STATUSES
        and job.push is not PushPolicy.NEVER
        and job.notified_at is None
    )


def seen_live(job: JobRecord, acked: tuple[int, str] | None) -> bool:
    """Whether the owner acknowledged the terminal message: an ack at the log's head, same epoch.

    Nothing is written to a job's log after its terminal status, so the head is that message.
    """
    if acked is None:
        return False
    seq, epoch = acked
    return epoch == job.epoch and seq >= job.seq


# -- payloads ---------------------------------------------------------------------------------


def _counters_text(job: JobState) -> str:
    counters = job.counters
    noun = "imported" if job.type == "csv_import" else "done"
    parts = [f"{counters.succeeded:,} {noun}"]
    if counters.failed:
        parts.append(f"{counters.failed:,} failed")
    if counters.skipped:
        parts.append(f"{counters.skipped:,} skipped")
    return ", ".join(parts)


_LABELS: Final = {"csv_import": "CSV import"}


def _label(job: JobState) -> str:
    return _LABELS.get(job.type) or job.type.replace("_", " ").capitalize()


def title_and_body(job: JobState) -> tuple[str, str]:
    """The visible text of the notification: status in the title, counters in the body."""
    if job.status is JobStatus.COMPLETED:
        return f"{_label(job)} finished", _counters_text(job)
    reason = job.error.message if job.error is not None else "it stopped with an error"
    return f"{_label(job)} failed", f"{_counters_text(job)}. {reason}"


def deep_link(job_id: str) -> str:
    return f"{DEEP_LINK_BASE}{job_id}"


def _compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _size(document: dict[str, Any]) -> int:
    return len(_compact(document).encode())


def _shortened(text: str, keep: int) -> str:
    """`text` cut to `keep` characters (whole code points) with an ellipsis when cut."""
    if keep >= len(text):
        return text
    return text[: max(keep, 0)].rstrip() + ELLIPSIS


def _fit(build: Callable[[str], dict[str, Any]], body: str, limit: int) -> dict[str, Any]:
    """The largest `build(body')` within `limit` bytes, `body'` a prefix of `body`.

    Binary search on the number of characters: sizes grow monotonically with the prefix, and
    JSON escaping and multi-byte characters make a byte-exact arithmetic cut unreliable.
    """
    document = build(body)
    if _size(document) <= limit:
        return document
    low, high = 0, len(body)
    while low < high:
        middle = (low + high + 1) // 2
        if _size(build(_shortened(body, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return build(_shortened(body, low))


def _category(job: JobState) -> str:
    return CATEGORY_COMPLETED if job.status is JobStatus.COMPLETED else CATEGORY_FAILED


def _sound(job: JobState) -> str:
    return SOUND_COMPLETED if job.status is JobStatus.COMPLETED else SOUND_FAILED


def apns_payload(job: JobState) -> dict[str, Any]:
    """The APNs payload (`aps` plus Tether's keys), at most 4 KB encoded as UTF-8 JSON."""
    title, body = title_and_body(job)

    def build(text: str) -> dict[str, Any]:
        return {
            "aps": {
                "alert": {"title": title, "body": text},
                "sound": _sound(job),
                "category": _category(job),
                "thread-id": job.job_id,
                "content-available": 1,
            },
            "jobId": job.job_id,
            "status": job.status.value,
            "url": deep_link(job.job_id),
        }

    return _fit(build, body, APNS_MAX_PAYLOAD_BYTES)


def fcm_payload(job: JobState) -> dict[str, Any]:
    """The FCM HTTP v1 message SNS forwards (`fcmV1Message`): notification + data."""
    title, body = title_and_body(job)

    def build(text: str) -> dict[str, Any]:
        return {
            "fcmV1Message": {
                "message": {
                    "notification": {"title": title, "body": text},
                    # FCM data values are strings only.
                    "data": {
                        "jobId": job.job_id,
                        "status": job.status.value,
                        "category": _category(job),
                        "url": deep_link(job.job_id),
                    },
                    "android": {
                        "collapse_key": job.job_id,
                        "priority": "high",
                        "notification": {
                            "sound": _sound(job).removesuffix(".caf"),
                            "tag": job.job_id,
                            "click_action": _category(job),
                        },
                    },
                }
            }
        }

    return _fit(build, body, FCM_MAX_PAYLOAD_BYTES)


def sns_message(job: JobState, platform: Platform) -> str:
    """The SNS `Message` for `MessageStructure=json`: the platform's payload as a string value.

    `default` is required by SNS for any endpoint the platform keys do not cover.
    """
    payload = fcm_payload(job) if platform is Platform.ANDROID else apns_payload(job)
    title, _ = title_and_body(job)
    return json.dumps({"default": title, SNS_KEY[platform]: _compact(payload)})


def sns_attributes(job: JobState, platform: Platform) -> dict[str, str]:
    """SNS message attributes APNs needs: a visible alert, delivered now, collapsed per job."""
    if platform is Platform.ANDROID:
        return {}
    return {
        "AWS.SNS.MOBILE.APNS.PUSH_TYPE": "alert",
        "AWS.SNS.MOBILE.APNS.PRIORITY": "10",
        "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": job.job_id[:64],
    }


def device_id_for(platform: Platform, token: str) -> str:
    """A stable device id for a registration without one: the platform and the token's hash.

    Registering the same token again finds the same device; the token cannot be read back.
    """
    digest = hashlib.sha256(f"{platform.value}:{token}".encode()).hexdigest()
    return f"d_{digest[:32]}"
