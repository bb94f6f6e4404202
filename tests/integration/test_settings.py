"""Settings from the environment; secrets resolved from Secrets Manager in the cloud."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from shared import constants as c
from shared.adapters.cursor import CursorCodec
from shared.settings import TetherSettings
from shared.wiring import cursor_codec, load_settings


@pytest.fixture(autouse=True)
def _tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c.ENV_JOBS_TABLE, "jobs")
    monkeypatch.setenv(c.ENV_MESSAGES_TABLE, "messages")


def test_the_cursor_secret_is_read_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="tether/cursor", SecretString="c" * 40
        )["ARN"]
        monkeypatch.setenv(c.ENV_CURSOR_SECRET_ARN, arn)

        settings = load_settings()
        cursor = cursor_codec(settings).encode("scope", {"k": 1})

    assert CursorCodec(b"c" * 40).decode("scope", cursor) == {"k": 1}
    assert "c" * 40 not in repr(settings)  # the value is never in the settings


def test_exactly_one_cursor_secret_source(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=c.ENV_CURSOR_SECRET):
        TetherSettings()
    monkeypatch.setenv(c.ENV_CURSOR_SECRET, "x" * 20)
    monkeypatch.setenv(c.ENV_CURSOR_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:1:secret:x")
    with pytest.raises(ValidationError, match="exactly one"):
        TetherSettings()
