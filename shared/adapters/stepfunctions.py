"""The JobRunner's executions on Step Functions: start one per job run, release paused tasks.

Executions are named after the job (and a generation, for later re-runs), so starting the same
job twice finds the first execution instead of starting a second one. A name stays taken for
90 days after its execution closed (StartExecution answers `ExecutionAlreadyExists`), so a
start that meets a name says whether that execution still runs: a closed one is not a success.
"""

from __future__ import annotations

import json
from typing import Any, Final

from botocore.exceptions import ClientError

from shared.services.ports import StartedExecution

# Answers meaning the token's task no longer waits: resumed already, timed out, or stopped.
_GONE_TOKEN_ERRORS: Final = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class StepFunctionsExecutions:
    """`shared.services.ports.ExecutionGateway` on AWS Step Functions."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        # `client` is a boto3 "stepfunctions" client (no type stubs for it in the project).
        self._client = client
        self._state_machine_arn = state_machine_arn

    def start(self, name: str, run_input: dict[str, Any]) -> StartedExecution:
        try:
            answer = self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=name,
                input=json.dumps(run_input, separators=(",", ":")),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            # Same name, other input, or closed: only a running one can be this launch's.
            arn = self._execution_arn(name)
            return StartedExecution(arn=arn, running=self.status(arn) == "RUNNING")
        # AWS answers a same-name, same-input start of a running execution with that one.
        return StartedExecution(arn=str(answer["executionArn"]), running=True)

    def send_task_success(self, task_token: str, output: dict[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE_TOKEN_ERRORS:
                return False
            raise
        return True

    def _execution_arn(self, name: str) -> str:
        # arn:aws:states:region:account:stateMachine:NAME → ...:execution:NAME:execution-name
        prefix, machine = self._state_machine_arn.rsplit(":stateMachine:", 1)
        return f"{prefix}:execution:{machine}:{name}"

    def status(self, execution_arn: str) -> str | None:
        """`shared.services.ports.ExecutionStatuses`: the execution's status, None if unknown."""
        try:
            answer = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return str(answer["status"])
