"""Idempotent job creation with Powertools' idempotency utility on DynamoDB.

The key is the tenant plus the client's `Idempotency-Key`; the payload check covers the owner
and the request body, so the same key with a different body is refused rather than answered
with someone else's job. Only the job's state is remembered, never a token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from shared.domain.errors import IdempotencyKeyReused, RequestInProgress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CreateFn = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class IdempotentCreate:
    """Runs `create(tenant, owner, body)` at most once per (tenant, key) within the TTL."""

    def __init__(
        self, create: CreateFn, *, client: DynamoDBClient, table: str, ttl_seconds: int
    ) -> None:
        persistence = DynamoDBPersistenceLayer(
            table_name=table, boto3_client=client, static_pk_value=None
        )
        self._config = config = IdempotencyConfig(
            event_key_jmespath="[tenant, key]",
            payload_validation_jmespath="[owner, body]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="request",
            persistence_store=persistence,
            config=config,
            key_prefix="tether#create_job",
        )
        def create_once(request: dict[str, Any]) -> dict[str, Any]:
            return create(request["tenant"], request["owner"], request["body"])

        self._create_once = create_once

    def register_lambda_context(self, lambda_context: Any) -> None:
        """Lets an in-progress record expire with the invocation that wrote it."""
        self._config.register_lambda_context(lambda_context)

    def __call__(
        self, *, tenant: str, owner: str, key: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        request = {"tenant": tenant, "owner": owner, "key": key, "body": body}
        try:
            result: dict[str, Any] = self._create_once(request=request)
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused() from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise RequestInProgress() from exc
        return result
