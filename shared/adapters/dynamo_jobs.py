"""The job store on DynamoDB: jobs table + messages table, written together in transactions.

Every change of a job replaces the job item on the condition that its `version` is still the
one the change was computed from, and appends the messages announcing it, in one
TransactWriteItems. The job item carries `seq`, so messages are numbered without gaps. A lost
race comes back with the current item (ReturnValuesOnConditionCheckFailure=ALL_OLD), so the
caller retries without an extra read.

An item that does not parse as a job (see `read_job`) never stops a reader: a listing skips
it, logged with its key and counted (metric `UnreadableJobItems`); a read by id raises
`UnreadableJob`, which the sweeps skip the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from pydantic import ValidationError

from shared.adapters.cursor import CursorCodec
from shared.adapters.dynamo_codec import (
    AttributeMap,
    from_attribute_map,
    to_attribute,
    to_attribute_map,
)
from shared.adapters.dynamo_pages import query_page
from shared.constants import (
    MESSAGE_TTL_SECONDS,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    TERMINAL_JOB_TTL_SECONDS,
)
from shared.domain.envelope import Envelope
from shared.domain.errors import JobAlreadyExists, JobNotFound, StaleJob, UnreadableJob
from shared.domain.lifecycle import JobChange
from shared.domain.models import JobRecord, JobStatus
from shared.services.ports import JobFilter, JobPage, MessagePage
from shared.tables import JOBS, MESSAGES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        WriteRequestTypeDef,
    )

# Attributes only the store uses: index keys and TTL, derived from the record on every write.
_DERIVED: Final = ("tenantStatus", "tenantType", "queueTenant", "queueRank", "expiresAt")
_ENVELOPE_KEYS: Final = ("v", "type", "jobId", "seq", "epoch", "ts", "data")
_BATCH_WRITE_LIMIT: Final = 25
UNREADABLE_METRIC: Final = "UnreadableJobItems"

logger = Logger(service=SERVICE_NAME)
# Powertools shares one metric set per process: the running handler's `log_metrics` flushes it.
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@dataclass(frozen=True, slots=True)
class TableNames:
    jobs: str
    messages: str


def job_key(tenant_id: str, job_id: str) -> str:
    return f"{tenant_id}#{job_id}"


def job_to_item(job: JobRecord) -> AttributeMap:
    document = job.model_dump(mode="json")
    document["tenantStatus"] = f"{job.tenant_id}#{job.status.value}"
    document["tenantType"] = f"{job.tenant_id}#{job.type}"
    if job.status is JobStatus.QUEUED:
        created = document["createdAt"]
        document["queueTenant"] = job.tenant_id
        document["queueRank"] = f"{job.priority.rank}#{created}#{job.job_id}"
    expires_at = job.expires_at(TERMINAL_JOB_TTL_SECONDS)
    if expires_at is not None:
        document["expiresAt"] = expires_at
    return to_attribute_map({k: v for k, v in document.items() if v is not None})


def job_from_item(item: dict[str, Any]) -> JobRecord:
    document = from_attribute_map(item)
    for name in _DERIVED:
        document.pop(name, None)
    return JobRecord.model_validate(document)


def read_job(item: dict[str, Any]) -> JobRecord:
    """The job an item holds; UnreadableJob (logged with its key, counted) when it holds none.

    The log names the key and the error's kind and location only: params may be personal data.
    """
    try:
        return job_from_item(item)
    except (ValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        tenant_id, job_id = (_key_part(item, name) for name in ("tenantId", "jobId"))
        logger.error(
            "unreadable job item skipped",
            extra={"tenantId": tenant_id, "jobId": job_id, "error": _error_kind(exc)},
        )
        metrics.add_metric(name=UNREADABLE_METRIC, unit=MetricUnit.Count, value=1)
        raise UnreadableJob(tenant_id, job_id) from exc


def _key_part(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    return str(value.get("S", "?")) if isinstance(value, dict) else "?"


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['type']}" for error in exc.errors()
        )[:500]
    return type(exc).__name__


def message_to_item(tenant_id: str, message: Envelope) -> AttributeMap:
    document = message.model_dump(mode="json")
    document["jobKey"] = job_key(tenant_id, message.job_id or "")
    document["tenantId"] = tenant_id
    document["expiresAt"] = int(message.ts.timestamp()) + MESSAGE_TTL_SECONDS
    return to_attribute_map(document)


def message_from_item(item: dict[str, Any]) -> Envelope:
    document = from_attribute_map(item)
    return Envelope.model_validate({key: document[key] for key in _ENVELOPE_KEYS})


class DynamoJobStore:
    """`shared.services.ports.JobStore` on DynamoDB."""

    def __init__(self, client: DynamoDBClient, tables: TableNames, cursors: CursorCodec) -> None:
        self._client = client
        self._tables = tables
        self._cursors = cursors

    # -- writes -----------------------------------------------------------------------------

    def insert(self, change: JobChange) -> None:
        job = change.job
        try:
            self._write(change, condition="attribute_not_exists(jobId)", values={})
        except StaleJob as exc:
            raise JobAlreadyExists(job.job_id) from exc

    def commit(self, change: JobChange) -> None:
        self._write(
            change,
            condition="#version = :expected",
            values={":expected": to_attribute(change.expected_version)},
            names={"#version": "version"},
        )

    def _write(
        self,
        change: JobChange,
        *,
        condition: str,
        values: AttributeMap,
        names: dict[str, str] | None = None,
    ) -> None:
        job = change.job
        put: dict[str, Any] = {
            "TableName": self._tables.jobs,
            "Item": job_to_item(job),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            put["ExpressionAttributeValues"] = values
        if names:
            put["ExpressionAttributeNames"] = names
        if not change.messages:
            self._put_job(job, put)
            return
        items: list[TransactWriteItemTypeDef] = [{"Put": put}]  # type: ignore[typeddict-item]
        items.extend(
            {
                "Put": {
                    "TableName": self._tables.messages,
                    "Item": message_to_item(job.tenant_id, message),
                    "ConditionExpression": "attribute_not_exists(seq)",
                }
            }
            for message in change.messages
        )
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            raise self._stale_from_cancellation(job, exc) from exc

    def _put_job(self, job: JobRecord, put: dict[str, Any]) -> None:
        try:
            self._client.put_item(**put)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StaleJob(job.job_id, _item_of(exc)) from exc

    def _stale_from_cancellation(self, job: JobRecord, exc: ClientError) -> StaleJob:
        reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
        job_reason = reasons[0] if reasons else {}
        current = job_reason.get("Item")
        if current:
            return StaleJob(job.job_id, read_job(current))
        if job_reason.get("Code") == "ConditionalCheckFailed":
            return StaleJob(job.job_id, None)  # the job item is gone
        # A TransactionConflict or a message collision: the caller re-reads and retries.
        return StaleJob(job.job_id, self._get_or_none(job.tenant_id, job.job_id))

    def delete(self, job: JobRecord) -> None:
        for keys in _chunks(self._message_keys(job.tenant_id, job.job_id), _BATCH_WRITE_LIMIT):
            self._delete_messages(keys)
        try:
            self._client.delete_item(
                TableName=self._tables.jobs,
                Key=self._job_key(job.tenant_id, job.job_id),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": to_attribute(job.version)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StaleJob(job.job_id, _item_of(exc)) from exc

    def _message_keys(self, tenant_id: str, job_id: str) -> Iterator[AttributeMap]:
        query: QueryInputTypeDef = {
            "TableName": self._tables.messages,
            "KeyConditionExpression": "jobKey = :key",
            "ExpressionAttributeValues": {":key": {"S": job_key(tenant_id, job_id)}},
            "ProjectionExpression": "jobKey, seq",
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**query)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            query["ExclusiveStartKey"] = last

    def _delete_messages(self, keys: list[AttributeMap]) -> None:
        requests: list[WriteRequestTypeDef] = [{"DeleteRequest": {"Key": key}} for key in keys]
        # Unprocessed items are retried by botocore's standard retry mode only on throttling
        # errors, not when DynamoDB hands them back: resend until none are left.
        for _ in range(10):
            answer = self._client.batch_write_item(RequestItems={self._tables.messages: requests})
            unprocessed = answer.get("UnprocessedItems", {}).get(self._tables.messages, [])
            requests = cast("list[WriteRequestTypeDef]", unprocessed)
            if not requests:
                return
        raise RuntimeError(f"{len(requests)} message deletes still unprocessed")

    # -- reads ------------------------------------------------------------------------------

    def _job_key(self, tenant_id: str, job_id: str) -> AttributeMap:
        return {"tenantId": {"S": tenant_id}, "jobId": {"S": job_id}}

    def _get_or_none(self, tenant_id: str, job_id: str) -> JobRecord | None:
        answer = self._client.get_item(
            TableName=self._tables.jobs, Key=self._job_key(tenant_id, job_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return read_job(item) if item else None

    def get(self, tenant_id: str, job_id: str) -> JobRecord:
        job = self._get_or_none(tenant_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list_jobs(
        self, tenant_id: str, job_filter: JobFilter, *, limit: int, cursor: str | None
    ) -> JobPage:
        query = self._list_query(tenant_id, job_filter)
        scope = f"jobs|{tenant_id}|{job_filter.status or ''}|{job_filter.type or ''}"
        if cursor:
            query["ExclusiveStartKey"] = self._cursors.decode(scope, cursor)
        position = JOBS.position_attributes(query.get("IndexName"))
        page = query_page(self._client, query, limit=limit, position=position)
        last = page.next_position
        return JobPage(
            jobs=list(_readable(page.items)),
            next_cursor=self._cursors.encode(scope, last) if last else None,
        )

    def _list_query(self, tenant_id: str, job_filter: JobFilter) -> QueryInputTypeDef:
        values: dict[str, Any] = {}
        query: QueryInputTypeDef = {"TableName": self._tables.jobs, "ScanIndexForward": False}
        if job_filter.status is not None:
            query["IndexName"] = _index("byStatus")
            query["KeyConditionExpression"] = "tenantStatus = :pk"
            values[":pk"] = {"S": f"{tenant_id}#{job_filter.status.value}"}
            if job_filter.type is not None:
                query["FilterExpression"] = "#type = :type"
                query["ExpressionAttributeNames"] = {"#type": "type"}
                values[":type"] = {"S": job_filter.type}
        elif job_filter.type is not None:
            query["IndexName"] = _index("byType")
            query["KeyConditionExpression"] = "tenantType = :pk"
            values[":pk"] = {"S": f"{tenant_id}#{job_filter.type}"}
        else:
            query["KeyConditionExpression"] = "tenantId = :pk"
            values[":pk"] = {"S": tenant_id}
        query["ExpressionAttributeValues"] = values
        return query

    def read_messages(
        self, tenant_id: str, job_id: str, *, after: int, limit: int, now: datetime
    ) -> MessagePage:
        query: QueryInputTypeDef = {
            "TableName": self._tables.messages,
            "KeyConditionExpression": "jobKey = :key AND seq > :after",
            # DynamoDB's TTL deletes days late: an expired message must not be served.
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {
                ":key": {"S": job_key(tenant_id, job_id)},
                ":after": {"N": str(after)},
                ":now": {"N": str(int(now.timestamp()))},
            },
            "ConsistentRead": True,
        }
        page = query_page(self._client, query, limit=limit, position=MESSAGES.position_attributes())
        return MessagePage(
            messages=[message_from_item(item) for item in page.items],
            has_more=page.next_position is not None,
        )


def _item_of(exc: ClientError) -> JobRecord | None:
    """The current job item a failed condition returned (ALL_OLD), if it exists."""
    item = cast("dict[str, Any] | None", exc.response.get("Item"))
    return read_job(item) if item else None


def _readable(items: list[dict[str, Any]]) -> Iterator[JobRecord]:
    """The jobs among `items`; an unreadable one is skipped (`read_job` reported it)."""
    for item in items:
        try:
            yield read_job(item)
        except UnreadableJob:
            continue


def _index(name: str) -> str:
    if name not in {index.name for index in JOBS.indexes}:
        raise KeyError(f"the jobs table has no index {name}")
    return name


def _chunks(items: Iterator[AttributeMap], size: int) -> Iterator[list[AttributeMap]]:
    chunk: list[AttributeMap] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
