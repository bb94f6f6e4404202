"""Secrets Manager, through Powertools' parameters utility (cached across warm invocations)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

SECRET_MAX_AGE_SECONDS = 300  # a rotated key reaches warm Lambdas within five minutes


def read_secret(arn: str) -> str:
    value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(value, str):
        raise TypeError("the secret must hold a string")
    return value
