"""After a restart: what moto's memory lost, rebuilt from the restored tables.

The tables come back from the snapshot and the write journal (`persistence`), but Step
Functions executions and EventBridge Scheduler schedules lived only in moto's memory. So, once
the stack runs again:

* every unfinished job gets a new execution: a running one carries on from its committed
  cursor (a batch is committed only if the cursor has not moved, so none counts twice), a
  paused one parks again waiting for resume, and a queued one asks for a run slot as at
  creation (`admit`; a job already holding its slot keeps it);
* every `scheduled` job gets its one-time `at(...)` schedule back (one whose time passed while
  the stack was down runs at the ticker's next tick, as AWS would have run it), and every
  recurring schedule its Scheduler schedule, enabled or paused as recorded.

Before any of that, while nobody can read the tables yet, `start_new_epochs` gives every
unfinished job a new log generation when the restored history cannot be vouched for (a seq is
never reused under one epoch). Items are read in process, one at a time: an item that does not
parse (e.g. mangled by moto) is skipped, logged with its key and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from infra.local.snapshot import key_of
from shared.adapters.dynamo_codec import from_attribute_map
from shared.adapters.dynamo_jobs import job_from_item, job_to_item
from shared.domain.clock import IdFactory
from shared.domain.models import JobRecord, JobStatus
from shared.domain.schedules import ScheduleRecord
from shared.services.jobs import JobRef
from shared.services.launcher import job_entry, schedule_entry
from shared.services.ports import SchedulerEntry
from shared.tables import JOBS, SCHEDULES, TableSpec

logger = Logger(service="tether-local")

ItemsOf = Callable[[str], list[dict[str, Any]]]


class Relauncher(Protocol):
    """What recovery needs of the JobRunner (`shared.services.runner.JobRunner`)."""

    def launch(self, ref: JobRef) -> object: ...
    def admit(self, ref: JobRef) -> object: ...


class SchedulePutter(Protocol):
    """What recovery needs of the Scheduler (`shared.services.ports.SchedulerGateway`)."""

    def put(self, entry: SchedulerEntry) -> None: ...


@dataclass(frozen=True)
class Recovered:
    jobs_relaunched: int = 0
    schedules_restored: int = 0
    items_skipped: int = 0  # stored items that could not be parsed or restored
    epochs_started: int = 0  # unfinished jobs given a new epoch (their history was not vouched)


def recover(
    items_of: ItemsOf,
    tables: dict[str, str],
    *,
    runner: Relauncher,
    scheduler: SchedulePutter,
) -> Recovered:
    relaunched = restored = skipped = 0
    for item in items_of(tables[JOBS.key]):
        try:
            relaunched_now, restored_now = _recover_job(job_from_item(item), runner, scheduler)
        except Exception as error:  # one bad item must never stop a restart
            skipped += 1
            report_skipped(JOBS, item, error)
            continue
        relaunched += relaunched_now
        restored += restored_now
    if SCHEDULES.key in tables:
        for item in items_of(tables[SCHEDULES.key]):
            try:
                schedule = ScheduleRecord.model_validate(from_attribute_map(item))
                scheduler.put(schedule_entry(schedule))
            except Exception as error:  # as above
                skipped += 1
                report_skipped(SCHEDULES, item, error)
                continue
            restored += 1
    return Recovered(relaunched, restored, skipped)


def _recover_job(job: JobRecord, runner: Relauncher, scheduler: SchedulePutter) -> tuple[int, int]:
    """(jobs relaunched, schedules restored) for one job."""
    ref = JobRef(job.tenant_id, job.job_id)
    if job.status in (JobStatus.RUNNING, JobStatus.PAUSED):
        runner.launch(ref)
        return 1, 0
    if job.status is JobStatus.QUEUED:
        runner.admit(ref)
        return 1, 0
    if job.status is JobStatus.SCHEDULED and job.schedule and job.schedule.scheduled_for:
        scheduler.put(job_entry(job))
        return 0, 1
    return 0, 0


def start_new_epochs(
    items_of: ItemsOf, put_item: Callable[[str, dict[str, Any]], None], table: str, ids: IdFactory
) -> int:
    """Give every unfinished job of `table` (the jobs table) a new epoch; how many.

    A terminal job is left alone: once terminal, a job writes no more messages, so a restored
    terminal job's log is complete. Its version moves too, so nothing computed from the old
    record can commit over the new one.
    """
    started = 0
    for item in items_of(table):
        try:
            job = job_from_item(item)
        except Exception:  # noqa: S112 - `recover` reports and counts it
            continue
        if job.is_terminal:
            continue
        renewed = job.model_copy(update={"epoch": ids.epoch(), "version": job.version + 1})
        put_item(table, dict(job_to_item(renewed)))
        logger.warning(
            "new epoch: the restored log may lack messages clients saw",
            extra={"jobId": job.job_id, "oldEpoch": job.epoch, "epoch": renewed.epoch},
        )
        started += 1
    return started


def report_skipped(spec: TableSpec, item: Any, error: BaseException | str) -> None:
    """One structured line per skipped item: its table and key, never the item itself."""
    names = tuple(a.name for a in (spec.partition_key, spec.sort_key) if a is not None)
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    logger.error(
        "stored item skipped",
        extra={"table": spec.key, "key": key_of(item, names), "reason": reason[:300]},
    )
