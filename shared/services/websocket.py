"""WebSocket use cases: connect, disconnect, and the client actions (docs/protocol.md).

Recovery follows the contract exactly: register the subscription first (so nothing published
from now on is missed live), then replay every message after the client's position (its
`since`, or its stored delivery cursor) packed into `batch` frames, or, when the log cannot
fill the gap (expired, too far behind, another epoch, or `since` ahead of the log's head: the
server lost history the client saw), answer `resync` with the job's state.
The `subscribed` reply always says which of the two happened.

Each use case returns the frames to send, in order; the handler posts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from pydantic import ValidationError

from shared.domain.actions import CLIENT_ACTION, Ack, Cancel, Ping, Subscribe, Unsubscribe
from shared.domain.auth import Principal, Scope
from shared.domain.clock import Clock
from shared.domain.envelope import Envelope, ErrorData, MessageType, SubscribedData
from shared.domain.errors import MessagesExpired, TetherError
from shared.domain.frames import pack_batches
from shared.services.jobs import JobRef, JobService
from shared.services.ports import ConnectionRecord, DeliveryCursor
from shared.services.runner import JobRunner

# Client frames are small JSON actions; API Gateway's own frame limit is 32 KB.
MAX_CLIENT_FRAME_BYTES: Final = 4 * 1024


class ConnectionStore(Protocol):
    def connect(self, connection_id: str, principal: Principal, now: datetime) -> None: ...
    def get(self, connection_id: str, now: datetime) -> ConnectionRecord | None: ...
    def disconnect(self, connection_id: str) -> int: ...
    def subscribe(self, connection: ConnectionRecord, job_id: str, now: datetime) -> None: ...
    def unsubscribe(self, connection_id: str, tenant_id: str, job_id: str) -> None: ...
    def cursor(self, tenant_id: str, subject: str, job_id: str) -> DeliveryCursor | None: ...
    def advance_cursor(
        self, tenant_id: str, subject: str, job_id: str, cursor: DeliveryCursor, now: datetime
    ) -> bool: ...


class ConnectionGone(TetherError):
    code = "not_connected"
    title = "Not connected"

    def __init__(self) -> None:
        super().__init__("this connection is not registered (expired or never authorized)")


class PositionAhead(TetherError):
    """A client acks a seq the log has not reached: its state is not ours to trust."""

    code = "seq_ahead"
    title = "Seq ahead of the log"

    def __init__(self, job_id: str, seq: int, head: int) -> None:
        super().__init__(f"job {job_id}: seq {seq} is ahead of the log's head {head}")


class FrameTooLarge(TetherError):
    code = "frame_too_large"
    title = "Frame too large"

    def __init__(self, size: int) -> None:
        super().__init__(f"a client frame is at most {MAX_CLIENT_FRAME_BYTES} bytes; got {size}")


@dataclass(frozen=True, slots=True)
class WebSocketSession:
    jobs: JobService
    connections: ConnectionStore
    clock: Clock
    # Cancel goes through the runner, as over HTTP: a paused job's parked execution is let go,
    # so it ends, frees its run slot and starts the tenant's next waiting job.
    runner: JobRunner

    def connect(self, connection_id: str, principal: Principal) -> None:
        self.connections.connect(connection_id, principal, self.clock.now())

    def disconnect(self, connection_id: str) -> None:
        self.connections.disconnect(connection_id)

    def receive(self, connection_id: str, body: str | None) -> list[Envelope]:
        """Handle one client frame; bad input becomes an `error` frame and changes nothing."""
        # A lone surrogate (an escape in the event's JSON) is the parser's to refuse, not a crash.
        size = len((body or "").encode(errors="surrogatepass"))
        if size > MAX_CLIENT_FRAME_BYTES:
            refused = FrameTooLarge(size)
            return [self._error(refused.code, refused.message)]
        try:
            action = CLIENT_ACTION.validate_json(body or "")
        except ValidationError as invalid:
            return [self._error("bad_request", _describe(invalid))]
        try:
            connection = self.connections.get(connection_id, self.clock.now())
            if connection is None:
                raise ConnectionGone()
            match action:
                case Subscribe():
                    return self.subscribe(connection, action)
                case Unsubscribe():
                    self.connections.unsubscribe(
                        connection_id, connection.principal.tenant_id, action.job_id
                    )
                    return []
                case Ack():
                    self.ack(connection, action)
                    return []
                case Cancel():
                    self.cancel(connection, action)
                    return []
                case Ping():
                    return [Envelope(type=MessageType.PONG, ts=self.clock.now())]
        except TetherError as refused:
            return [self._error(refused.code, refused.message, getattr(action, "job_id", None))]

    def subscribe(self, connection: ConnectionRecord, action: Subscribe) -> list[Envelope]:
        principal = connection.principal
        principal.authorize(Scope.JOBS_READ, action.job_id)
        ref = JobRef(principal.tenant_id, action.job_id)
        job = self.jobs.get(ref)  # 404 before registering anything
        now = self.clock.now()
        self.connections.subscribe(connection, action.job_id, now)
        same_generation = action.epoch is None or action.epoch == job.epoch
        if action.since is not None and same_generation and action.since > job.seq:
            # The client saw seqs this log does not hold: the server lost history (e.g. a
            # restore). Nothing after `since` can be replayed; the state is the truth now.
            return self._resync(action.job_id, job.state().model_dump(mode="json"), now)
        since, epoch = action.since, action.epoch
        if since is None:
            cursor = self.connections.cursor(principal.tenant_id, principal.subject, action.job_id)
            since, epoch = (cursor.seq, cursor.epoch) if cursor else (0, None)
        try:
            log = self.jobs.replay(ref, since, epoch=epoch)
        except MessagesExpired as expired:
            return self._resync(action.job_id, expired.snapshot or {}, now)
        reply = SubscribedData(
            job_id=action.job_id,
            seq=log.seq,
            epoch=log.epoch,
            recovered=True,
            replayed=len(log.messages),
        )
        return [self._subscribed(reply, now), *pack_batches(action.job_id, log.messages, now)]

    def _resync(self, job_id: str, snapshot: dict[str, Any], now: datetime) -> list[Envelope]:
        """`subscribed` with `recovered: false`, then the state to adopt instead of a replay."""
        reply = SubscribedData(
            job_id=job_id,
            seq=int(snapshot.get("seq", 0)),
            epoch=str(snapshot.get("epoch", "")),
            recovered=False,
            replayed=0,
        )
        resync = Envelope(type=MessageType.RESYNC, job_id=job_id, ts=now, data=snapshot)
        return [self._subscribed(reply, now), resync]

    def ack(self, connection: ConnectionRecord, action: Ack) -> None:
        principal = connection.principal
        principal.authorize(Scope.JOBS_READ, action.job_id)
        job = self.jobs.get(JobRef(principal.tenant_id, action.job_id))
        if action.seq > job.seq:
            raise PositionAhead(action.job_id, action.seq, job.seq)
        cursor = DeliveryCursor(seq=action.seq, epoch=job.epoch)
        self.connections.advance_cursor(
            principal.tenant_id, principal.subject, action.job_id, cursor, self.clock.now()
        )

    def cancel(self, connection: ConnectionRecord, action: Cancel) -> None:
        principal = connection.principal
        principal.authorize(Scope.JOBS_WRITE, action.job_id)
        self.runner.cancel(JobRef(principal.tenant_id, action.job_id))

    def _subscribed(self, reply: SubscribedData, now: datetime) -> Envelope:
        return Envelope(
            type=MessageType.SUBSCRIBED,
            job_id=reply.job_id,
            ts=now,
            data=reply.model_dump(mode="json"),
        )

    def _error(self, code: str, message: str, job_id: str | None = None) -> Envelope:
        data = ErrorData(code=code, message=message).model_dump(mode="json")
        return Envelope(type=MessageType.ERROR, job_id=job_id, ts=self.clock.now(), data=data)


def _describe(invalid: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'frame'}: {error['msg']}"
        for error in invalid.errors()[:5]
    ]
    return "; ".join(problems)
