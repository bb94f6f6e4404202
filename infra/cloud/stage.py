"""Deployment stages of the Tether stack and what differs between them.

The stage comes from CDK context (`-c stage=prod`); everything a stage changes is decided here,
once, so constructs take plain settings (a removal policy, a flag) and never branch on a name.
"""

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
