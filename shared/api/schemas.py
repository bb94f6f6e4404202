"""Response bodies of the HTTP API (docs/http-api.md), one pydantic model each, and the parameters
several routes share.

They are the route functions' types, so the OpenAPI document describes exactly what the API
takes and sends.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from shared.domain.envelope import Envelope
from shared.domain.models import JobState, TetherModel


class JobCreated(TetherModel):
    job: JobState
    resume_token: str = Field(
        description="scoped to this one job: read its state and messages, subscribe; keep it in "
        "the keychain for reconnects"
    )


class JobList(TetherModel):
    jobs: list[JobState]
    next_cursor: str | None = Field(default=None, description="opaque; pass back as ?cursor=")


class MessageList(TetherModel):
    job_id: str
    epoch: str
    seq: int = Field(description="the head of the job's log when it was read")
    messages: list[Envelope]
    has_more: bool


# What `shared.adapters.cursor` issues: two base64url parts, the position and its signature.
Cursor = Annotated[
    str | None,
    Query(
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="opaque: the `nextCursor` of the previous page",
    ),
]
