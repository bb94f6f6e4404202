"""Fault injection for the JobRunner suite: Lambda task faults and AWS API faults, by plan.

Two layers, each where the fault really happens:

* `LambdaFaults` wraps each task handler registered with the local JobRunner. A Lambda
  service error (`Lambda.ServiceException`, `Lambda.TooManyRequestsException`, ...) never runs
  the handler; a task timeout (`States.Timeout`) or a lost invocation (`Lambda.Unknown`) runs
  it and then loses its answer, as when the Lambda finished after Step Functions gave up on it;
  a handler exception is our own code failing; a duplicate delivers the same input twice (Step
  Functions invokes at least once). The wrapper raises an exception whose class *name* is the
  error name: the in-process invoke reports it as Lambda's `errorType`, and moto's parser turns
  that into the error name Retry and Catch match, for plain-ARN tasks and for
  `lambda:invoke.waitForTaskToken` alike. (moto would name a `ClientError` from a plain-ARN
  invoke `Exception`, where AWS says `Lambda.ServiceException`: hence this layer, not boto.)
* `ApiFaults` answers chosen AWS API calls (by `X-Amz-Target` and a substring of the request
  body, e.g. a job id) with an error response *below* botocore's retry handler, so the
  standard retry mode retries throttling exactly as against AWS and our code sees only what
  survives it. The retry's sleep is patched out (`no_sleeps`).

A plan names the job it targets, so a leftover execution of another case cannot consume it.
`ALWAYS` injects for as long as the plan holds; `clear()` ends it (the outage is over).
"""

from __future__ import annotations

import functools
import json
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import botocore.endpoint
import pytest
from moto.awslambda.models import LambdaFunction
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb.responses import DynamoResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

TaskHandler = Callable[[dict[str, Any], Any], Any]
ALWAYS: Final = -1


class LambdaFault(StrEnum):
    SERVICE = "Lambda.ServiceException"
    CLIENT_TIMEOUT = "Lambda.ClientExecutionTimeoutException"
    THROTTLED = "Lambda.TooManyRequestsException"
    TIMEOUT = "States.Timeout"
    UNKNOWN = "Lambda.Unknown"
    HANDLER = "InjectedCrash"
    DUPLICATE = "duplicate"

    @property
    def runs_handler(self) -> bool:
        """Whether the handler ran (and committed what it does) before the fault."""
        return self in {LambdaFault.TIMEOUT, LambdaFault.UNKNOWN, LambdaFault.DUPLICATE}


@functools.cache
def error_class(name: str) -> type[Exception]:
    """An exception class called `name` (dots and all): its name becomes Lambda's errorType."""
    return type(name, (Exception,), {"__module__": __name__})


@dataclass
class _LambdaRule:
    step: str
    fault: LambdaFault
    job_id: str
    left: int
    fired: int = 0


@dataclass
class LambdaFaults:
    """The fault plan of the task handlers; `wrap` each handler once, at deploy time."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rules: list[_LambdaRule] = field(default_factory=list)
    _fired: Counter[str] = field(default_factory=Counter)  # by job id, kept across clear()
    calls: list[tuple[str, str]] = field(default_factory=list)  # (step, jobId) per invocation

    def inject(self, step: str, fault: LambdaFault, *, job_id: str, times: int) -> None:
        with self._lock:
            self._rules.append(_LambdaRule(step, fault, job_id, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def fired(self, job_id: str) -> int:
        with self._lock:
            return self._fired[job_id]

    def wrap(self, step: str, handler: TaskHandler) -> TaskHandler:
        def faulty(event: dict[str, Any], context: Any) -> Any:
            fault = self._take(step, job_of(event))
            if fault is None:
                return handler(event, context)
            if fault is LambdaFault.DUPLICATE:
                handler(json.loads(json.dumps(event)), context)
                return handler(event, context)
            if fault.runs_handler:
                handler(event, context)
            raise error_class(fault.value)(f"injected {fault.value} in {step}")

        return faulty

    def _take(self, step: str, job_id: str) -> LambdaFault | None:
        with self._lock:
            self.calls.append((step, job_id))
            for rule in self._rules:
                if rule.step == step and rule.job_id == job_id and rule.left != 0:
                    rule.left = max(rule.left - 1, ALWAYS if rule.left < 0 else 0)
                    rule.fired += 1
                    self._fired[job_id] += 1
                    return rule.fault
        return None

    @contextmanager
    def timeouts_escape(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaFaults]:
        """Make an injected `States.Timeout` a timeout of the invoke itself, as moto's parser
        needs to name it `States.Timeout` (it refuses a Lambda errorType starting `States.`)."""
        invoke: Callable[..., tuple[str, bool, str]] = LambdaFunction._invoke_lambda

        def timing_out(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            payload, errored, logs = invoke(function, event)
            if errored and json.loads(payload).get("errorType") == LambdaFault.TIMEOUT.value:
                raise TimeoutError(f"{function.function_name} timed out (injected)")
            return payload, errored, logs

        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", timing_out)
        yield self


@dataclass
class _ApiRule:
    target: str
    code: str
    needle: str
    left: int
    status: int
    extra: dict[str, Any]
    fired: int = 0


@dataclass
class ApiFaults:
    """Error answers for AWS calls served by moto in process, by plan (see module doc)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rules: list[_ApiRule] = field(default_factory=list)
    _fired: Counter[str] = field(default_factory=Counter)  # by error code, kept across clear()

    def inject(
        self,
        target: str,
        code: str,
        *,
        needle: str,
        times: int,
        status: int = 400,
        **extra: Any,
    ) -> None:
        """Answer calls whose X-Amz-Target ends with `target` and whose body holds `needle`."""
        with self._lock:
            self._rules.append(_ApiRule(target, code, needle, times, status, extra))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def fired(self, code: str) -> int:
        with self._lock:
            return self._fired[code]

    def answer(self, request: Any) -> tuple[int, dict[str, str], str] | None:
        raw = request.headers.get("X-Amz-Target", b"")
        target = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not target:
            return None
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        with self._lock:
            for rule in self._rules:
                if target.endswith(rule.target) and rule.needle in text and rule.left != 0:
                    rule.left = max(rule.left - 1, ALWAYS if rule.left < 0 else 0)
                    rule.fired += 1
                    self._fired[rule.code] += 1
                    error = {"__type": rule.code, "message": f"injected {rule.code}", **rule.extra}
                    headers = {"Content-Type": "application/x-amz-json-1.0"}
                    return rule.status, headers, json.dumps(error)
        return None

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiFaults]:
        """Serve the plan in front of moto's request handling while the context is open."""
        serve: Callable[[BotocoreStubber, Any], Any] = BotocoreStubber.process_request

        def faulty(stubber: BotocoreStubber, request: Any) -> Any:
            answer = self.answer(request)
            return answer if answer is not None else serve(stubber, request)

        monkeypatch.setattr(BotocoreStubber, "process_request", faulty)
        yield self


def transaction_conflict(items: int) -> dict[str, Any]:
    """The `CancellationReasons` of a transaction that lost to a concurrent one."""
    return {
        "CancellationReasons": [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        ]
        + [{"Code": "None"}] * (items - 1)
    }


class _NoSleep(types.ModuleType):
    """`time` for modules that sleep between retries: the sleep is recorded, not slept."""

    def __init__(self, slept: list[float]) -> None:
        super().__init__("time")
        self._slept = slept

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self._slept.append(seconds)


def job_of(event: dict[str, Any]) -> str:
    """The job a task event is for (RecordFailure's state sits under `state`)."""
    state = event.get("state")
    return str((state if isinstance(state, dict) else event).get("jobId", ""))


def no_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries of Step Functions' Retriers and of botocore return at once; what they asked."""
    slept: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", _NoSleep(slept))
    monkeypatch.setattr(botocore.endpoint, "time", _NoSleep(slept))
    return slept


def fast_dynamodb_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serialize moto's DynamoDB answers with `json.dumps` (test-only speed, same bytes).

    moto 5.2 serializes every answer through its generic, model-driven serializer, which costs
    about half of a GetItem; DynamoDB's JSON protocol is the result as it stands, so a result
    made only of JSON values is sent as is. Anything else (dates in DescribeTable, ...) still
    goes through moto's serializer.
    """
    serialize: Callable[[DynamoResult, Any], Any] = DynamoResult.execute_result

    def as_json(result: DynamoResult, context: Any) -> Any:
        try:
            body = json.dumps(result.result)
        except TypeError:
            return serialize(result, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    monkeypatch.setattr(DynamoResult, "execute_result", as_json)
