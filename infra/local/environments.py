"""Lambda's execution environments in the local stack: each function handles one event at a time.

Lambda hands an execution environment one event at a time, and Tether's handlers rely on it:
Powertools' resolver keeps the current event on the module's `app`, the Logger its keys,
Metrics its pending metrics. The local stack runs every function in one process, called from
the gateway's thread pool, moto's Step Functions threads, the stream poller and the ticker, so
every invocation goes through a `LocalFunction`, which holds its function's environment (a lock
per function name, shared by every caller) for the whole event. One environment per function,
not a pool: the module-level objects are process-global, so a second environment would need a
second copy of the module, and the handlers are CPU-bound on moto anyway (a pool measured no
faster).

The invocation a thread is running is known (`current_request_id`), and `mark_management_calls`
makes every `@connections` call carry it: while a handler runs for a WebSocket connection, the
gateway tells that handler's own frames from anyone else's (see `gateway`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

import boto3
from botocore.awsrequest import AWSRequest

Handler = Callable[[dict[str, Any], Any], Any]

# Sent (and signed) with every @connections call a handler makes: its invocation's request id.
INVOCATION_HEADER: Final = "X-Tether-Local-Invocation"
_MANAGEMENT_CALLS: Final = "before-sign.apigatewaymanagementapi"
_MARKER_ID: Final = "tether-local-invocation"

_current: ContextVar[str | None] = ContextVar("tether_local_invocation", default=None)


_environments: dict[str, threading.Lock] = {}  # by function name, for the whole process
_environments_lock = threading.Lock()


def _environment(function_name: str) -> threading.Lock:
    """The one environment of a function, whoever invokes it."""
    with _environments_lock:
        return _environments.setdefault(function_name, threading.Lock())


class LocalFunction:
    """A Lambda function as the local stack invokes it: one event at a time, like Lambda."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self._environment = _environment(name)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._environment:
            token = _current.set(getattr(context, "aws_request_id", None))
            try:
                return self.handler(event, context)
            finally:
                _current.reset(token)

    def __repr__(self) -> str:
        return f"LocalFunction({self.name!r})"


def current_request_id() -> str | None:
    """The request id of the invocation running on this thread, if any."""
    return _current.get()


def _mark(request: AWSRequest, **_: Any) -> None:
    request_id = _current.get()
    if INVOCATION_HEADER in request.headers:
        del request.headers[INVOCATION_HEADER]  # a retry is signed again: one value, not two
    if request_id is not None:
        request.headers[INVOCATION_HEADER] = request_id


def mark_management_calls() -> None:
    """From now on, `@connections` calls made inside an invocation say which one made them.

    The handlers' clients come from boto3's default session, and a client copies its
    session's event handlers when it is created: call this before the stack builds them.
    Outside an invocation the marker adds nothing, and the cloud's clients never have it.
    """
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(_MANAGEMENT_CALLS, _mark, unique_id=_MARKER_ID)
