"""A small Step Functions interpreter for the stateful test: it reads the JobRunner's real
definition (`shared.runner.definition`) and runs it one state per `step()`, calling the real
task handlers in process, so a test can interleave faults, control requests and clock jumps
between any two states of any execution.

It covers exactly what the definition uses: Task (plain Lambda ARN, and
`lambda:invoke.waitForTaskToken` parked until `send_task_success` or its TimeoutSeconds(Path)
passes on the injected clock), Choice (StringEquals, BooleanEquals), Wait (advances the clock),
Pass, Succeed, Fail, Parameters with `.$` paths (`$`, `$.a.b`, `$$.Execution.Id`,
`$$.Task.Token`, `$$.State.EnteredTime`), InputPath, ResultPath, Retry (ErrorEquals,
MaxAttempts; intervals are not slept) and Catch. It is also the runner's `ExecutionGateway`
(start, send_task_success) and the cleanup's `ExecutionStatuses`, with Step Functions' rules: a
name starts one execution ever.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from shared.domain.clock import ManualClock
from shared.services.ports import StartedExecution
from tests.faults.injection import LambdaFault

Handler = Callable[[dict[str, Any], Any], Any]
WAIT_FOR_TOKEN: Final = "arn:aws:states:::lambda:invoke.waitForTaskToken"
ARN_PREFIX: Final = "arn:aws:states:us-east-1:123456789012:execution:tether-job-runner:"


class TaskError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    arn: str
    state: str
    data: Any
    status: str = "RUNNING"
    attempts: dict[int, int] = field(default_factory=dict)  # retrier → retries so far
    token: str | None = None  # the task token it is parked on
    deadline: datetime | None = None
    released: Any = None
    steps: int = 0
    # `$$.State.EnteredTime`: set on entering a state, kept by its retries (as in AWS); the
    # entry count keeps two entries apart when the test clock did not move between them.
    entries: int = 0
    entered: str = ""


def resolve(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    """A reference path: `$`, `$.a.b` into the state's data, `$$.a.b` into the context."""
    value: Any = context if path.startswith("$$") else data
    for part in path.lstrip("$").split("."):
        if part:
            value = value[part]
    return value


def parameters(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = copy.deepcopy(resolve(value, data, context))
            else:
                out[key] = parameters(value, data, context)
        return out
    return template


def with_result(data: Any, result_path: str | None, result: Any) -> Any:
    if result_path is None:
        return data
    if result_path == "$":
        return result
    merged = copy.deepcopy(data)
    target = merged
    *parents, leaf = result_path[2:].split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = result
    return merged


def _matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names or error in names:
        return True
    return "States.TaskFailed" in names and not error.startswith("States.")


@dataclass
class Interpreter:
    definition: dict[str, Any]
    handlers: dict[str, Handler]  # by function ARN
    clock: ManualClock
    context: Any
    executions: dict[str, Execution] = field(default_factory=dict)
    faults: list[LambdaFault] = field(default_factory=list)  # for the next task invocations
    fired: list[tuple[str, LambdaFault]] = field(default_factory=list)
    _tokens: int = 0

    # -- the gateway the runner and the cleanup see --------------------------------------

    def start(self, name: str, run_input: dict[str, Any]) -> StartedExecution:
        arn = ARN_PREFIX + name
        if arn not in self.executions:  # a name starts one execution, ever
            start = self.definition["StartAt"]
            execution = Execution(arn, start, json.loads(json.dumps(run_input)))
            execution.entered = f"{self.clock.now().isoformat()}#0"
            self.executions[arn] = execution
        return StartedExecution(arn, running=self.executions[arn].status == "RUNNING")

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> bool:
        for execution in self.executions.values():
            if execution.token == task_token and execution.status == "RUNNING":
                execution.released = output
                return True
        return False  # the task no longer waits: TaskTimedOut / InvalidToken, answered quietly

    def status(self, execution_arn: str) -> str | None:
        execution = self.executions.get(execution_arn)
        return execution.status if execution else None

    # -- running ----------------------------------------------------------------------------

    def alive(self, prefix: str = "") -> list[Execution]:
        return [e for arn, e in self.executions.items() if e.status == "RUNNING" and prefix in arn]

    def movable(self, prefix: str = "") -> list[Execution]:
        """Live executions that can take a step now (not parked on a token that waits)."""
        return [e for e in self.alive(prefix) if e.token is None or self._unparks(e)]

    def _unparks(self, execution: Execution) -> bool:
        due = execution.deadline is not None and self.clock.now() >= execution.deadline
        return execution.released is not None or due

    def step(self, execution: Execution) -> None:
        """Run the execution's current state once (or do nothing while it stays parked)."""
        state = self.definition["States"][execution.state]
        execution.steps += 1
        if execution.token is not None:
            self._wake(execution, state)
            return
        kind = state["Type"]
        if kind == "Task":
            self._task(execution, state)
        elif kind == "Choice":
            self._go(execution, self._choose(state, execution.data))
        elif kind == "Wait":
            seconds = state.get("Seconds")
            if seconds is None:
                seconds = resolve(state["SecondsPath"], execution.data, {})
            self.clock.advance(seconds=int(seconds))
            self._go(execution, state["Next"])
        elif kind == "Pass":
            data = execution.data
            if "InputPath" in state:
                value = resolve(state["InputPath"], data, {})
            else:
                value = state.get("Result", data)
            execution.data = with_result(data, state.get("ResultPath", "$"), value)
            self._go(execution, state.get("Next"))
        elif kind == "Succeed":
            execution.status = "SUCCEEDED"
        else:
            execution.status = "FAILED"

    def _choose(self, state: dict[str, Any], data: Any) -> str:
        for choice in state["Choices"]:
            value = data.get(choice["Variable"][2:]) if isinstance(data, dict) else None
            if "StringEquals" in choice and value == choice["StringEquals"]:
                return str(choice["Next"])
            if "BooleanEquals" in choice and value is choice["BooleanEquals"]:
                return str(choice["Next"])
        return str(state["Default"])

    def _go(self, execution: Execution, target: str | None) -> None:
        execution.attempts = {}
        if target is None:
            execution.status = "SUCCEEDED"
        else:
            execution.state = target
            execution.entries += 1
            execution.entered = f"{self.clock.now().isoformat()}#{execution.entries}"

    def _task(self, execution: Execution, state: dict[str, Any]) -> None:
        token: str | None = None
        if state["Resource"] == WAIT_FOR_TOKEN:
            self._tokens += 1
            token = f"token-{self._tokens}"
        context = {
            "Execution": {"Id": execution.arn},
            "State": {"EnteredTime": execution.entered, "Name": execution.state},
            "Task": {"Token": token},
        }
        data = execution.data
        if "InputPath" in state:
            data = resolve(state["InputPath"], data, context)
        if "Parameters" in state:
            data = parameters(state["Parameters"], data, context)
        function = state["Resource"]
        if token is not None:
            function, data = data["FunctionName"], data["Payload"]
            # The token is live before the function runs: it may send it back itself.
            execution.token, execution.released = token, None
        try:
            result = self._invoke(function, data)
        except TaskError as failure:
            execution.token = execution.released = None
            self._fail(execution, state, failure)
            return
        if token is None:
            execution.data = with_result(execution.data, state.get("ResultPath", "$"), result)
            self._go(execution, state.get("Next"))
            return
        timeout = state.get("TimeoutSeconds")
        if "TimeoutSecondsPath" in state:
            timeout = resolve(state["TimeoutSecondsPath"], execution.data, {})
        execution.deadline = (
            None if timeout is None else self.clock.now() + timedelta(seconds=int(timeout))
        )

    def _wake(self, execution: Execution, state: dict[str, Any]) -> None:
        released, due = execution.released, execution.deadline
        if released is None and (due is None or self.clock.now() < due):
            return  # still waiting for resume
        execution.token, execution.released, execution.deadline = None, None, None
        if released is None:
            self._fail(execution, state, TaskError("States.Timeout", "the task timed out"))
            return
        execution.data = with_result(execution.data, state.get("ResultPath", "$"), released)
        self._go(execution, state.get("Next"))

    def _invoke(self, function: str, payload: Any) -> Any:
        handler = self.handlers[function]
        event = json.loads(json.dumps(payload))
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            self.fired.append((function, fault))
        if fault is LambdaFault.DUPLICATE:
            self._call(handler, json.loads(json.dumps(payload)))
        elif fault is not None and not fault.runs_handler:
            raise TaskError(fault.value, f"injected {fault.value}")
        result = self._call(handler, event)
        if fault is not None and fault.runs_handler and fault is not LambdaFault.DUPLICATE:
            raise TaskError(fault.value, f"injected {fault.value} after the handler ran")
        return json.loads(json.dumps(result))

    def _call(self, handler: Handler, event: dict[str, Any]) -> Any:
        try:
            return handler(event, self.context)
        except Exception as exc:  # what Lambda reports: errorType and errorMessage
            cause = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
            raise TaskError(type(exc).__name__, cause) from exc

    def _fail(self, execution: Execution, state: dict[str, Any], failure: TaskError) -> None:
        for index, retrier in enumerate(state.get("Retry", [])):
            if _matches(retrier["ErrorEquals"], failure.error):
                done = execution.attempts.get(index, 0)
                if done < retrier.get("MaxAttempts", 3):
                    execution.attempts[index] = done + 1
                    return  # the same state runs again (the interval is not slept)
                break
        for catcher in state.get("Catch", []):
            if _matches(catcher["ErrorEquals"], failure.error):
                error = {"Error": failure.error, "Cause": failure.cause}
                execution.data = with_result(execution.data, catcher.get("ResultPath", "$"), error)
                self._go(execution, catcher["Next"])
                return
        execution.status = "FAILED"
