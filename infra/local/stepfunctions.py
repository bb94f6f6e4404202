"""The local JobRunner: moto's Step Functions interpreter running the real definition, with
every Lambda task routed to the real handler in this process (docs/local-stack.md). No Docker.

How it works, in three parts (what moto's interpreter does differently: docs/local-stack.md):

* `MOTO_CONFIG` turns moto's interpreter on (`mock_aws(config=MOTO_CONFIG)`; in server mode
  POST it to `/moto-api/config`). Executions run in moto's background threads.
* `install()` replaces `moto.awslambda.models.LambdaFunction._invoke_lambda`: a function whose
  name was registered with a handler is run in process (errors come back as Lambda's
  `{errorType, errorMessage}` with the function-error flag, so Catch and Retry see them), and
  `WaitFunction._wait_interval`: every `Wait` is recorded in `requested_waits()` (so tests can
  assert computed backoffs) and sleeps `wait_scale` times the requested seconds (0 in tests).
  A Retrier's interval is recorded (`requested_retries()`) and scaled the same way. A task
  waiting for its token with a timeout (`TimeoutSecondsPath`) records it
  (`requested_task_timeouts()`); with `task_timeouts=False` (the tests) it times out only when
  `expire_task_timeouts()` says so, as if that much time had passed, instead of on the wall
  clock.
* `deploy_job_runner()` creates a dummy moto Lambda function per task (so the ARNs resolve),
  registers the handlers under their names and creates the state machine from
  `shared.runner.definition`, the same builder CDK uses.
"""

from __future__ import annotations

import io
import json
import threading
import time
import types
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from moto.awslambda.models import LambdaFunction
from moto.core.config import DefaultConfig
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcome

from shared.runner.definition import job_runner_definition

TaskHandler = Callable[[dict[str, Any], Any], Any]

MOTO_CONFIG: Final[DefaultConfig] = {"stepfunctions": {"execute_state_machine": True}}
_ROLE_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class _Hook:
    lock: threading.Lock = field(default_factory=threading.Lock)
    installed: bool = False
    wait_scale: float = 0.0
    task_timeouts: bool = True
    handlers: dict[str, TaskHandler] = field(default_factory=dict)
    waits: list[int] = field(default_factory=list)
    retries: list[float] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    parked: set[CallbackEndpoint] = field(default_factory=set)
    parking: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.parking = threading.Condition(self.lock)


_hook = _Hook()


class _RetrierTime(types.ModuleType):
    """`time` for moto's Retrier: its interval sleep is recorded and scaled like a Wait."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        with _hook.lock:
            _hook.retries.append(seconds)
            scaled = seconds * _hook.wait_scale
        if scaled > 0:
            time.sleep(scaled)


@dataclass(frozen=True, slots=True)
class LocalLambdaContext:
    """The parts of Lambda's context object Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def install(*, wait_scale: float = 0.0, task_timeouts: bool = True) -> None:
    """Route registered Lambda functions in process and make waits recorded and scaled.

    `task_timeouts=False`: a task's timeout fires only through `expire_task_timeouts()`.
    """
    with _hook.lock:
        _hook.wait_scale = wait_scale
        _hook.task_timeouts = task_timeouts
    _patch()


def _patch() -> None:
    with _hook.lock:
        if _hook.installed:
            return
        original: Callable[..., tuple[str, bool, str]] = LambdaFunction._invoke_lambda

        def invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            handler = _hook.handlers.get(self.function_name)
            if handler is None:
                return original(self, event)
            payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
            context = LocalLambdaContext(self.function_name, self.function_arn)
            try:
                result = handler(payload, context)
            except Exception as exc:
                error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                return json.dumps(error), True, ""
            return json.dumps(result), False, ""

        def recorded_wait(_self: WaitFunction, env: Any, wait_seconds: int) -> None:
            with _hook.lock:
                _hook.waits.append(wait_seconds)
                scaled = wait_seconds * _hook.wait_scale
            if scaled > 0:
                env.program_state_event.wait(scaled)  # set when the execution is stopped

        LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign]
        WaitFunction._wait_interval = recorded_wait  # type: ignore[method-assign,assignment]
        CallbackEndpoint.wait = _bounded_callback_wait  # type: ignore[method-assign]
        retrier_decl.time = _RetrierTime("time")  # type: ignore[attr-defined]
        _hook.installed = True


def _bounded_callback_wait(
    self: CallbackEndpoint, timeout: float | None = None
) -> CallbackOutcome | None:
    """moto's wait for a task token (None: it timed out), recorded and test-controllable."""
    with _hook.lock:
        if timeout is not None:
            _hook.timeouts.append(timeout)
        _hook.parked.add(self)
        _hook.parking.notify_all()
        fires = timeout if _hook.task_timeouts else None
    try:
        self._notify_event.wait(timeout=fires)
    finally:
        with _hook.lock:
            _hook.parked.discard(self)
    return self._outcome


def parked_task_tokens(*, at_least: int = 1, within: float = 10.0) -> list[str]:
    """The tokens of the tasks waiting for one now, once `at_least` of them wait."""
    with _hook.parking:
        if not _hook.parking.wait_for(lambda: len(_hook.parked) >= at_least, within):
            raise TimeoutError(f"fewer than {at_least} task(s) wait for a token")
        return [endpoint.callback_id for endpoint in _hook.parked]


def expire_task_timeouts(*, at_least: int = 1, within: float = 10.0) -> int:
    """Time out every task waiting for its token now, once `at_least` of them wait.

    Their executions go on as Step Functions' would when the task's timeout passes (a
    `States.Timeout`); the number expired.
    """
    parked_task_tokens(at_least=at_least, within=within)
    with _hook.lock:
        parked = list(_hook.parked)
    for endpoint in parked:
        endpoint._notify_event.set()  # no outcome: moto reads a timeout
    return len(parked)


def register(function_name: str, handler: TaskHandler) -> None:
    with _hook.lock:
        _hook.handlers[function_name] = handler


def requested_waits() -> list[int]:
    """Seconds every `Wait` state asked for since the last `clear_waits()`, in order."""
    with _hook.lock:
        return list(_hook.waits)


def requested_retries() -> list[float]:
    """Seconds every Retrier waited before a retry since the last `clear_waits()`, in order."""
    with _hook.lock:
        return list(_hook.retries)


def requested_task_timeouts() -> list[float]:
    """Timeouts of the tasks that waited for a token since the last `clear_waits()`."""
    with _hook.lock:
        return list(_hook.timeouts)


def clear_waits() -> None:
    with _hook.lock:
        _hook.waits.clear()
        _hook.retries.clear()
        _hook.timeouts.clear()


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def deploy_job_runner(
    *,
    lambda_client: Any,
    iam_client: Any,
    sfn_client: Any,
    handlers: Mapping[str, TaskHandler],
    name: str = "tether-job-runner",
) -> str:
    """Create the task functions and the JobRunner state machine in moto; its ARN.

    `handlers` maps each task step of the definition to the handler that runs it.
    """
    _patch()
    role = iam_client.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=_ROLE_POLICY)
    role_arn = role["Role"]["Arn"]
    code = _dummy_zip()
    arns: dict[str, str] = {}
    for step, handler in handlers.items():
        function_name = f"{name}-{step.replace('_', '-')}"
        created = lambda_client.create_function(
            FunctionName=function_name,
            Runtime="python3.11",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": code},
        )
        register(function_name, handler)
        arns[step] = created["FunctionArn"]
    machine = sfn_client.create_state_machine(
        name=name,
        definition=json.dumps(job_runner_definition(arns)),
        roleArn=role_arn,
        type="STANDARD",
    )
    return str(machine["stateMachineArn"])


def runner_handlers() -> dict[str, TaskHandler]:
    """The real task handlers of `functions.runner`, by task step."""
    from functions import runner

    return {
        "prepare": runner.prepare,
        "process": runner.process,
        "record_failure": runner.record_failure,
        "await_resume": runner.await_resume,
        "finalize": runner.finalize,
        "notify": runner.notify,
    }
