"""Deployment stages of the Tether stack and what differs between them.

The stage comes from CDK context (`-c stage=prod`); everything a stage changes is decided here,
once, so constructs take plain settings (a removal policy, a flag) and never branch on a name.
"""

from dataclasses import dataclass
from enum import StrEnum

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs


class DeploymentStage(StrEnum):
    DEV = "dev"
    PROD = "prod"

    @classmethod
    def from_context(cls, value: object) -> "DeploymentStage":
        """The stage named by a context value; `dev` when unset, an error when unknown."""
        if value is None:
            return cls.DEV
        try:
            return cls(str(value))
        except ValueError:
            allowed = ", ".join(stage.value for stage in cls)
            raise ValueError(f"unknown stage {value!r}: expected one of {allowed}") from None

    @property
    def removal_policy(self) -> RemovalPolicy:
        # A dev stack is disposable: `cdk destroy` should leave nothing behind. Prod data
        # outlives its stack, so a mistaken delete or replacement orphans tables, not data.
        return RemovalPolicy.RETAIN if self is DeploymentStage.PROD else RemovalPolicy.DESTROY

    @property
    def deletion_protection(self) -> bool:
        # RETAIN covers CloudFormation; deletion protection also stops a console or CLI
        # delete-table in prod. Dev keeps it off so teardown needs no manual step.
        return self is DeploymentStage.PROD

    @property
    def log_retention(self) -> logs.RetentionDays:
        # Dev logs serve the debugging session of the day; prod keeps three months for incident
        # reviews and for questions like "what happened to my job last month" (jobs live 30 days).
        return (
            logs.RetentionDays.THREE_MONTHS
            if self is DeploymentStage.PROD
            else logs.RetentionDays.ONE_WEEK
        )

    @property
    def recovery_period_days(self) -> int:
        # Point-in-time recovery is on in every stage (a bad deploy can corrupt dev data too);
        # the window differs: prod keeps DynamoDB's maximum, 35 days, for incidents found late;
        # dev a week, enough to undo the day's mistake.
        return 35 if self is DeploymentStage.PROD else 7

    @property
    def alarm_thresholds(self) -> "AlarmThresholds":
        return _PROD_THRESHOLDS if self is DeploymentStage.PROD else _DEV_THRESHOLDS


@dataclass(frozen=True, slots=True)
class AlarmThresholds:
    """When an `Observability` alarm fires, per stage (counts per 5-minute period)."""

    # Dead-lettered stream batches: any is a delivery that will never happen by itself.
    dispatcher_dlq_messages: int
    # JobRunner executions that failed, timed out or were aborted by the runtime.
    failed_executions: int
    # Unhandled errors of the stream dispatcher.
    dispatcher_errors: int
    # Share of HTTP API requests answered 5xx, in percent.
    http_5xx_percent: float
    # Pushes SNS refused (the `PushFailed` metric of the Notify task).
    push_failures: int
    # Launches given up on (the launch DLQ): a scheduled or triggered job that never started.
    launch_dlq_messages: int
    # Unhandled errors of the launcher (retried, then dead-lettered) and of the hourly cleanup.
    launcher_errors: int
    cleanup_errors: int


# Prod pages on the first sign of lost delivery; dev tolerates the noise of experiments.
_PROD_THRESHOLDS = AlarmThresholds(
    dispatcher_dlq_messages=1,
    failed_executions=1,
    dispatcher_errors=1,
    http_5xx_percent=1.0,
    push_failures=5,
    launch_dlq_messages=1,
    launcher_errors=1,
    cleanup_errors=1,
)
_DEV_THRESHOLDS = AlarmThresholds(
    dispatcher_dlq_messages=1,
    failed_executions=5,
    dispatcher_errors=10,
    http_5xx_percent=10.0,
    push_failures=50,
    launch_dlq_messages=1,
    launcher_errors=5,
    cleanup_errors=1,
)
