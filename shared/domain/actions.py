"""What a client may send over the WebSocket (docs/protocol.md): one model per action.

API Gateway routes on `$request.body.action`; the handler validates the whole frame against
this union, so a bad frame gets an `error` frame naming the problem and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from shared.domain.models import Identifier, TetherModel


class Subscribe(TetherModel):
    action: Literal["subscribe"]
    job_id: Identifier
    # Strict: `true` or "3" is a client bug to report, not a seq to guess (true would be 1).
    since: int | None = Field(
        default=None, ge=0, strict=True, description="the last seq the client has"
    )
    epoch: str | None = Field(default=None, max_length=32, description="the generation of since")


class Unsubscribe(TetherModel):
    action: Literal["unsubscribe"]
    job_id: Identifier


class Ack(TetherModel):
    action: Literal["ack"]
    job_id: Identifier
    seq: int = Field(ge=1, strict=True)


class Cancel(TetherModel):
    action: Literal["cancel"]
    job_id: Identifier


class Ping(TetherModel):
    action: Literal["ping"]


ClientAction = Annotated[
    Subscribe | Unsubscribe | Ack | Cancel | Ping, Field(discriminator="action")
]
CLIENT_ACTION: TypeAdapter[Subscribe | Unsubscribe | Ack | Cancel | Ping] = TypeAdapter(
    ClientAction
)
