"""The job error code a failed task's error name becomes (what RecordFailure and Finalize
record, and what a client reads in `error.code`): one snake_case word per part of the name."""

from __future__ import annotations

import pytest

from shared.runner.state import TaskFailure
from shared.services.runner import describe_failure


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("Lambda.ServiceException", "lambda_service_exception"),
        ("Lambda.TooManyRequestsException", "lambda_too_many_requests_exception"),
        ("Lambda.Unknown", "lambda_unknown"),
        ("Sandbox.Timedout", "sandbox_timedout"),
        ("ProvisionedThroughputExceededException", "provisioned_throughput_exceeded_exception"),
        ("States.TaskFailed", "task_failed"),
    ],
)
def test_an_error_name_becomes_a_snake_case_code_without_doubled_underscores(
    error: str, code: str
) -> None:
    assert describe_failure(TaskFailure(Error=error, Cause=None))[0].code == code
