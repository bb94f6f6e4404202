"""Push payloads and decisions (docs/architecture.md, Push): pure, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.models import (
    Counters,
    JobError,
    JobRecord,
    JobStatus,
    Platform,
    PushPolicy,
)
from shared.domain.push import (
    APNS_MAX_PAYLOAD_BYTES,
    DeviceRegistration,
    apns_payload,
    device_id_for,
    fcm_payload,
    seen_live,
    sns_attributes,
    sns_message,
    title_and_body,
    wants_push,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _job(status: JobStatus = JobStatus.COMPLETED, **changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "job_id": "j_0001",
        "tenant_id": "acme",
        "owner_id": "alice",
        "type": "csv_import",
        "status": status,
        "counters": Counters(total=1000, processed=1000, succeeded=980, failed=20),
        "epoch": "e1",
        "seq": 14,
        "created_at": NOW,
        "updated_at": NOW,
        "finished_at": NOW,
        **changes,
    }
    return JobRecord(**fields)


def _encoded_size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


def test_completed_and_failed_differ_in_title_body_sound_and_category() -> None:
    # Given a completed and a failed import with the same counters
    done = apns_payload(_job())
    failed = apns_payload(
        _job(JobStatus.FAILED, error=JobError(code="s3_object_not_found", message="no such key"))
    )

    # Then each says what happened, with the counters in the body
    assert done["aps"]["alert"] == {
        "title": "CSV import finished",
        "body": "980 imported, 20 failed",
    }
    assert failed["aps"]["alert"] == {
        "title": "CSV import failed",
        "body": "980 imported, 20 failed. no such key",
    }
    assert (done["aps"]["category"], failed["aps"]["category"]) == ("JOB_COMPLETED", "JOB_FAILED")
    assert done["aps"]["sound"] != failed["aps"]["sound"]
    # And both deep-link to the job, thread on it and wake the app to sync
    for payload in (done, failed):
        assert payload["aps"]["thread-id"] == "j_0001"
        assert payload["aps"]["content-available"] == 1
        assert payload["jobId"] == "j_0001"
        assert payload["url"] == "tether://jobs/j_0001"


def test_apns_payload_of_a_huge_multibyte_error_stays_within_4_kb_and_valid_json() -> None:
    # Given a failed job whose error is the longest a job keeps (2,048 characters): 1,800
    # four-byte emoji and 248 characters JSON must escape (quotes, backslashes): ~7.5 KB
    message = "😱" * 1800 + '"\\' * 124
    job = _job(JobStatus.FAILED, error=JobError(code="boom", message=message))

    # When its APNs payload is built and sent as SNS would send it
    payload = apns_payload(job)
    envelope = json.loads(sns_message(job, Platform.IOS))
    delivered = json.loads(envelope["APNS"])

    # Then it fits Apple's 4 KB, is whole JSON, keeps every key, and only the body was cut
    assert _encoded_size(payload) <= APNS_MAX_PAYLOAD_BYTES
    assert _encoded_size(delivered) <= APNS_MAX_PAYLOAD_BYTES
    assert delivered == payload
    body = payload["aps"]["alert"]["body"]
    assert body.startswith("980 imported, 20 failed. ")
    assert body.endswith("…")
    assert len(body) > 500  # shortened, not dropped
    print(
        f"\nAPNs payload of a failed job with a {len(message.encode()):,}-byte error: "
        f"{_encoded_size(payload):,} bytes (limit {APNS_MAX_PAYLOAD_BYTES:,}), "
        f"body cut to {len(body):,} characters"
    )
    assert payload["aps"]["category"] == "JOB_FAILED"
    assert payload["url"] == "tether://jobs/j_0001"
    # And the body is the full text cut on a character, and as late as the budget allows
    _, full = title_and_body(job)
    assert full.startswith(body[:-1])
    assert _encoded_size(payload) > APNS_MAX_PAYLOAD_BYTES - 8  # at most one 4-byte char short


def test_fcm_message_has_notification_data_and_collapse_key() -> None:
    # Given a completed job / When its FCM message is built
    message = fcm_payload(_job())["fcmV1Message"]["message"]

    # Then it shows a notification and carries the job as string data, collapsed per job
    assert message["notification"] == {
        "title": "CSV import finished",
        "body": "980 imported, 20 failed",
    }
    assert message["data"] == {
        "jobId": "j_0001",
        "status": "completed",
        "category": "JOB_COMPLETED",
        "url": "tether://jobs/j_0001",
    }
    assert message["android"]["collapse_key"] == "j_0001"
    assert all(isinstance(value, str) for value in message["data"].values())


@pytest.mark.parametrize(
    ("platform", "key"),
    [(Platform.IOS, "APNS"), (Platform.IOS_SANDBOX, "APNS_SANDBOX"), (Platform.ANDROID, "GCM")],
)
def test_sns_message_carries_the_platform_payload_as_a_json_string(
    platform: Platform, key: str
) -> None:
    # When the SNS message for a platform is built
    envelope = json.loads(sns_message(_job(), platform))

    # Then it has `default` and exactly that platform's key, whose value is JSON in a string
    assert set(envelope) == {"default", key}
    assert isinstance(envelope[key], str)
    inner = json.loads(envelope[key])
    assert ("aps" in inner) is (platform is not Platform.ANDROID)
    # And APNs gets a visible, immediate alert collapsed per job; FCM needs no attributes
    attributes = sns_attributes(_job(), platform)
    if platform is Platform.ANDROID:
        assert attributes == {}
    else:
        assert attributes["AWS.SNS.MOBILE.APNS.PUSH_TYPE"] == "alert"
        assert attributes["AWS.SNS.MOBILE.APNS.COLLAPSE_ID"] == "j_0001"


def test_only_completed_or_failed_jobs_with_a_push_policy_push_once() -> None:
    assert wants_push(_job())
    assert wants_push(_job(JobStatus.FAILED))
    assert not wants_push(_job(JobStatus.CANCELLED))
    assert not wants_push(_job(JobStatus.RUNNING, finished_at=None))
    assert not wants_push(_job(push=PushPolicy.NEVER))
    assert wants_push(_job(push=PushPolicy.ALWAYS))
    assert not wants_push(_job(notified_at=NOW))


def test_seen_live_means_an_ack_of_the_terminal_message_in_this_epoch() -> None:
    job = _job()  # seq 14 is its terminal status message
    assert seen_live(job, (14, "e1"))
    assert not seen_live(job, (13, "e1"))  # saw progress, not the end
    assert not seen_live(job, (14, "e0"))  # another generation of the log
    assert not seen_live(job, None)


def test_registration_validates_platform_and_token_and_derives_a_stable_id() -> None:
    registration = DeviceRegistration.model_validate(
        {"platform": "ios_sandbox", "token": "a" * 64, "locale": "de-CH"}
    )
    assert registration.platform is Platform.IOS_SANDBOX
    first = device_id_for(Platform.IOS, "a" * 64)
    assert first == device_id_for(Platform.IOS, "a" * 64)
    assert first != device_id_for(Platform.IOS, "b" * 64)
    assert first != device_id_for(Platform.ANDROID, "a" * 64)
    assert "a" * 16 not in first  # the token cannot be read back from the id
    for bad in ({"platform": "windows", "token": "a" * 64}, {"platform": "ios", "token": "x y"}):
        with pytest.raises(ValueError, match="validation error"):
            DeviceRegistration.model_validate(bad)
