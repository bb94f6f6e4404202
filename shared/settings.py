"""The environment of a Tether process, modelled once and read at cold start.

Keys come from `shared.constants`, the same module the CDK app uses to set them. Logic never
reads `os.environ`; it receives a `TetherSettings`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import constants as c
from shared.domain.models import Platform

_PLATFORM_APPLICATION_ARN: Final = r"^arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:app/[A-Z_]+/.+$"


class TetherSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    jobs_table: str = Field(alias=c.ENV_JOBS_TABLE)
    messages_table: str = Field(alias=c.ENV_MESSAGES_TABLE)
    connections_table: str = Field(default="", alias=c.ENV_CONNECTIONS_TABLE)
    devices_table: str = Field(default="", alias=c.ENV_DEVICES_TABLE)
    idempotency_table: str = Field(default="", alias=c.ENV_IDEMPOTENCY_TABLE)
    limits_table: str = Field(default="", alias=c.ENV_LIMITS_TABLE)
    cursor_secret: SecretStr | None = Field(default=None, alias=c.ENV_CURSOR_SECRET, min_length=16)
    cursor_secret_arn: str | None = Field(
        default=None, alias=c.ENV_CURSOR_SECRET_ARN, pattern=r"^arn:"
    )
    progress_min_interval_ms: int = Field(
        default=c.DEFAULT_PROGRESS_MIN_INTERVAL_MS, ge=0, alias=c.ENV_PROGRESS_MIN_INTERVAL_MS
    )
    max_body_bytes: int = Field(default=c.DEFAULT_MAX_BODY_BYTES, ge=1, alias=c.ENV_MAX_BODY_BYTES)
    write_rate_per_minute: int = Field(
        default=c.DEFAULT_WRITE_RATE_PER_MINUTE, ge=1, alias=c.ENV_WRITE_RATE_PER_MINUTE
    )
    idempotency_ttl_seconds: int = Field(
        default=c.DEFAULT_IDEMPOTENCY_TTL_SECONDS, ge=60, alias=c.ENV_IDEMPOTENCY_TTL_SECONDS
    )
    websocket_management_url: str | None = Field(
        default=None, alias=c.ENV_WEBSOCKET_MANAGEMENT_URL, pattern=r"^https?://"
    )
    aws_endpoint_url: str | None = Field(default=None, alias=c.ENV_AWS_ENDPOINT_URL)
    state_machine_arn: str | None = Field(
        default=None, alias=c.ENV_STATE_MACHINE_ARN, pattern=r"^arn:"
    )
    batches_per_execution: int = Field(
        default=c.DEFAULT_BATCHES_PER_EXECUTION, ge=1, le=3000, alias=c.ENV_BATCHES_PER_EXECUTION
    )
    batch_size: int = Field(default=c.DEFAULT_BATCH_SIZE, ge=1, le=10_000, alias=c.ENV_BATCH_SIZE)
    # Schedules, priorities and cleanup (docs/architecture.md).
    schedules_table: str = Field(default="", alias=c.ENV_SCHEDULES_TABLE)
    scheduler_group: str = Field(default=c.DEFAULT_SCHEDULER_GROUP, alias=c.ENV_SCHEDULER_GROUP)
    scheduler_role_arn: str | None = Field(
        default=None, alias=c.ENV_SCHEDULER_ROLE_ARN, pattern=r"^arn:"
    )
    launcher_arn: str | None = Field(default=None, alias=c.ENV_LAUNCHER_ARN, pattern=r"^arn:")
    scheduler_dlq_arn: str | None = Field(
        default=None, alias=c.ENV_SCHEDULER_DLQ_ARN, pattern=r"^arn:[a-z-]+:sqs:"
    )
    max_running_per_tenant: int = Field(
        default=c.DEFAULT_MAX_RUNNING_PER_TENANT, ge=1, le=1000, alias=c.ENV_MAX_RUNNING_PER_TENANT
    )
    cleanup_interval_seconds: int = Field(
        default=c.DEFAULT_CLEANUP_INTERVAL_SECONDS, ge=60, alias=c.ENV_CLEANUP_INTERVAL_SECONDS
    )
    push_apns_arn: str | None = Field(
        default=None, alias=c.ENV_PUSH_APNS_ARN, pattern=_PLATFORM_APPLICATION_ARN
    )
    push_apns_sandbox_arn: str | None = Field(
        default=None, alias=c.ENV_PUSH_APNS_SANDBOX_ARN, pattern=_PLATFORM_APPLICATION_ARN
    )
    push_fcm_arn: str | None = Field(
        default=None, alias=c.ENV_PUSH_FCM_ARN, pattern=_PLATFORM_APPLICATION_ARN
    )
    import_bucket: str | None = Field(default=None, alias=c.ENV_IMPORT_BUCKET, min_length=3)
    push_grace_seconds: int = Field(
        default=c.DEFAULT_PUSH_GRACE_SECONDS, ge=0, le=3600, alias=c.ENV_PUSH_GRACE_SECONDS
    )

    @model_validator(mode="after")
    def _one_cursor_secret(self) -> Self:
        if (self.cursor_secret is None) == (self.cursor_secret_arn is None):
            raise ValueError(
                f"set exactly one of {c.ENV_CURSOR_SECRET} or {c.ENV_CURSOR_SECRET_ARN}"
            )
        return self

    @property
    def push_applications(self) -> dict[Platform, str]:
        """The configured SNS platform application of each platform; unset ones are absent."""
        configured = {
            Platform.IOS: self.push_apns_arn,
            Platform.IOS_SANDBOX: self.push_apns_sandbox_arn,
            Platform.ANDROID: self.push_fcm_arn,
        }
        return {platform: arn for platform, arn in configured.items() if arn}

    @property
    def progress_min_interval(self) -> timedelta:
        return timedelta(milliseconds=self.progress_min_interval_ms)
