"""The invariants every fault case and every stateful step must keep, as lists of violations.

A job reaches exactly one terminal state (or is still legitimately running or paused); its
counters are exact (processed = succeeded + failed + skipped = the items its type committed, and
all of them when it completed); a job that ended holds no run slot and leaves no execution
running; its message log is gap-free (seqs 1..head, each once); and no seq is ever written
twice with different content under one epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.adapters.dynamo_jobs import job_key, message_from_item
from shared.domain.envelope import Envelope, MessageType
from shared.domain.models import JobRecord, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from shared.services.jobs import JobRef

TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


def read_log(dynamodb: DynamoDBClient, table: str, ref: JobRef) -> list[Envelope]:
    """Every stored message of the job, straight from the table (no gap detection of ours)."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "jobKey = :key",
        "ExpressionAttributeValues": {":key": {"S": job_key(ref.tenant_id, ref.job_id)}},
        "ConsistentRead": True,
    }
    messages: list[Envelope] = []
    while True:
        page = dynamodb.query(**query)
        messages.extend(message_from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return messages
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def log_violations(job: JobRecord, log: list[Envelope]) -> list[str]:
    found: list[str] = []
    seqs = [message.seq for message in log]
    if seqs != list(range(1, job.seq + 1)):
        found.append(f"log seqs {seqs} are not 1..{job.seq}")
    if any(message.epoch != job.epoch for message in log):
        found.append("a message of another epoch in the log")
    ends = [
        m.data.get("status")
        for m in log
        if m.type is MessageType.STATUS and m.data.get("status") in {s.value for s in TERMINAL}
    ]
    if job.status in TERMINAL and ends != [job.status.value]:
        found.append(f"terminal status messages {ends} for a {job.status.value} job")
    if job.status not in TERMINAL and ends:
        found.append(f"terminal status messages {ends} for a {job.status.value} job")
    return found


def counter_violations(job: JobRecord, *, failed_items: int = 0) -> list[str]:
    """`failed_items`: how many of the committed items the job type counts as failed."""
    c = job.counters
    found: list[str] = []
    if c.processed != c.succeeded + c.failed + c.skipped:
        found.append(f"processed {c.processed} != {c.succeeded}+{c.failed}+{c.skipped}")
    if c.processed != job.cursor:
        found.append(f"processed {c.processed} but the cursor committed {job.cursor} items")
    if c.failed != failed_items and job.cursor >= c.total:
        found.append(f"failed {c.failed}, the job type failed {failed_items}")
    if c.processed > c.total:
        found.append(f"processed {c.processed} of {c.total}")
    if job.status is JobStatus.COMPLETED and c.processed != c.total:
        found.append(f"completed with {c.processed} of {c.total} processed")
    return found


def slot_violations(job: JobRecord, holders: dict[str, set[str]]) -> list[str]:
    if job.status in TERMINAL and job.job_id in holders.get(job.tenant_id, set()):
        return [f"the {job.status.value} job still holds a run slot"]
    return []


def execution_violations(job: JobRecord, running: list[str]) -> list[str]:
    if job.status in TERMINAL and running:
        return [f"the {job.status.value} job left executions running: {running}"]
    return []
