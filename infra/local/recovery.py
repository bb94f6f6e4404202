"""After a restart: what moto's memory lost, rebuilt from the restored tables.

The tables come back from the snapshot (`snapshot`), but Step Functions executions and
EventBridge Scheduler schedules lived only in moto's memory. So, once the stack runs again:

* every unfinished job gets a new execution: a running one carries on from its committed
  cursor (a batch is committed only if the cursor has not moved, so none counts twice), a
  paused one parks again waiting for resume, and a queued one asks for a run slot as at
  creation (`admit`; a job already holding its slot keeps it);
* every `scheduled` job gets its one-time `at(...)` schedule back (one whose time passed while
  the stack was down runs at the ticker's next tick, as AWS would have run it), and every
  recurring schedule its Scheduler schedule, enabled or paused as recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.adapters.dynamo_codec import from_attribute_map
from shared.adapters.dynamo_jobs import job_from_item
from shared.domain.models import JobStatus
from shared.domain.schedules import ScheduleRecord
from shared.services.jobs import JobRef
from shared.services.launcher import job_entry, schedule_entry
from shared.services.ports import SchedulerGateway
from shared.services.runner import JobRunner

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Recovered:
    jobs_relaunched: int = 0
    schedules_restored: int = 0


def recover(
    client: DynamoDBClient,
    tables: dict[str, str],
    *,
    runner: JobRunner,
    scheduler: SchedulerGateway,
) -> Recovered:
    relaunched = restored = 0
    for item in _scan(client, tables["jobs"]):
        job = job_from_item(item)
        ref = JobRef(job.tenant_id, job.job_id)
        if job.status in (JobStatus.RUNNING, JobStatus.PAUSED):
            runner.launch(ref)
            relaunched += 1
        elif job.status is JobStatus.QUEUED:
            runner.admit(ref)
            relaunched += 1
        elif job.status is JobStatus.SCHEDULED and job.schedule and job.schedule.scheduled_for:
            scheduler.put(job_entry(job))
            restored += 1
    for item in _scan(client, tables.get("schedules", "")):
        scheduler.put(schedule_entry(ScheduleRecord.model_validate(from_attribute_map(item))))
        restored += 1
    return Recovered(relaunched, restored)


def _scan(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    if not table:
        return
    for page in client.get_paginator("scan").paginate(TableName=table):
        yield from page.get("Items", [])
