"""The local stack's tables on disk: snapshot, write journal, and the unclean-stop marker.

The local stack's parity rule: an unclean stop (SIGKILL, power loss) loses nothing
acknowledged, and where history could still be lost, the epoch changes. `LocalState` puts the
pieces together for `LocalStack`:

* `open()` (before the gateway listens): restore the last snapshot (`snapshot`), replay the
  journal records written after it (`journal`), then, if the journal cannot vouch for that
  history (a record missing or unreadable), give every unfinished job a new epoch
  (`recovery.start_new_epochs`); then journal every write from now on and leave a marker
  (`running.json`) that only a clean stop removes, so the next start knows this one died.
* `save()`: a snapshot that compacts the journal (the segments it covers are deleted).
* `close()` (after the local AWS stopped): the journal synced and closed, the marker removed.

Without persistence (`journal=False`: tests' throwaway stacks) `open()` still restores and
replays whatever the folder holds, but writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aws_lambda_powertools import Logger

from infra.local import journal, moto_patches, recovery, snapshot
from infra.local.aws import LocalAws
from infra.local.journal import ReplayReport, WriteJournal
from infra.local.snapshot import SkippedItem, SnapshotReport
from shared.domain.clock import IdFactory, RandomIds
from shared.tables import JOBS, TABLES

MARKER_FILE: Final = "running.json"
_SPECS: Final = {spec.key: spec for spec in TABLES}
_KEY_NAMES: Final = {
    spec.key: tuple(a.name for a in (spec.partition_key, spec.sort_key) if a is not None)
    for spec in TABLES
}

logger = Logger(service="tether-local")


@dataclass(frozen=True)
class StateReport:
    """What a start found on disk and did with it."""

    restored: SnapshotReport | None = None
    replayed: ReplayReport | None = None
    unclean_stop: bool = False  # the previous run did not stop cleanly
    epochs_started: int = 0
    skipped: tuple[SkippedItem, ...] = ()
    seconds: float = 0.0

    @property
    def found_tables(self) -> bool:
        """Anything to rebuild executions and schedules from."""
        return self.restored is not None or bool(self.replayed and self.replayed.records)


@dataclass
class LocalState:
    state_dir: Path
    aws: LocalAws
    tables: dict[str, str]
    ids: IdFactory = field(default_factory=RandomIds)
    writer: WriteJournal | None = None
    _skipped: list[SkippedItem] = field(default_factory=list, init=False)

    @property
    def snapshot_path(self) -> Path:
        return self.state_dir / snapshot.SNAPSHOT_FILE

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / journal.JOURNAL_DIR

    @property
    def marker(self) -> Path:
        return self.state_dir / MARKER_FILE

    def forget(self) -> None:
        """`--fresh`: the previous run's tables are gone for good."""
        self.snapshot_path.unlink(missing_ok=True)
        shutil.rmtree(self.journal_dir, ignore_errors=True)
        self.marker.unlink(missing_ok=True)

    def open(self, *, journal_writes: bool = True) -> StateReport:
        started = time.perf_counter()
        unclean = self.marker.exists()
        restored = snapshot.restore(
            self.aws.put_table_items, self.tables, self.snapshot_path, _KEY_NAMES
        )
        for skipped in restored.skipped if restored else ():
            recovery.report_skipped(_SPECS[skipped.table], skipped.key, skipped.reason)
        mark = restored.mark if restored else journal.JournalMark()
        # A dead run leaves a segment at or after its snapshot's mark (opened at its start or
        # at its last snapshot): none means its journal is gone.
        journal_lost = unclean and not any(
            number >= mark.segment for number in journal.segments(self.journal_dir)
        )
        self._skipped = list(restored.skipped) if restored else []
        replayed = journal.replay(self.journal_dir, mark, self._apply)
        if journal_writes:
            after = journal.JournalMark(mark.segment, replayed.last_record)
            self.writer = WriteJournal(self.journal_dir, tables=self.tables, after=after)
            journal.activate(self.writer)
            self._write_marker()
        epochs = 0
        if journal_lost or not replayed.intact:
            problems = [*replayed.problems, *(["journal missing"] if journal_lost else [])]
            logger.warning(
                "the journal cannot vouch for the restored history",
                extra={"problems": problems},
            )
            epochs = recovery.start_new_epochs(
                self.aws.table_items, self.aws.put_item, self.tables[JOBS.key], self.ids
            )
            if self.writer is not None:
                # A snapshot now, so the damaged journal is gone and the next start does not
                # start new epochs all over again.
                self.save()
        report = StateReport(
            restored=restored,
            replayed=replayed,
            unclean_stop=unclean,
            epochs_started=epochs,
            skipped=tuple(self._skipped),
            seconds=time.perf_counter() - started,
        )
        self._log(report)
        return report

    def save(self) -> SnapshotReport:
        """A snapshot; with a journal, it compacts it: what the snapshot holds leaves it."""
        with moto_patches.request_lock():  # no write between the capture and the mark
            content = snapshot.capture(self.aws.table_items, self.tables)
            mark = self.writer.rotate() if self.writer else None
        saved = snapshot.dump(content, self.snapshot_path, mark)
        if self.writer is not None and mark is not None:
            self.writer.compact(mark)
        return saved

    def close(self) -> None:
        """After the last write: the journal closed, and the marker of a running stack gone."""
        if self.writer is None:
            return
        journal.activate(None)
        self.writer.close()
        self.writer = None
        self.marker.unlink(missing_ok=True)

    def _apply(self, changes: list[journal.Change]) -> None:
        for table_key, key, image in changes:
            name = self.tables.get(table_key)
            if name is None:
                continue  # a table this version no longer has
            try:
                self.aws.apply_change(name, key, image)
            except Exception as error:  # one bad item must never stop a restart
                recovery.report_skipped(_SPECS[table_key], key, error)
                self._skipped.append(SkippedItem(table_key, key, str(error)[:300]))

    def _write_marker(self) -> None:
        document = {"pid": os.getpid(), "startedAt": datetime.now(UTC).isoformat()}
        partial = self.marker.with_suffix(".partial")
        partial.write_text(json.dumps(document) + "\n")
        partial.replace(self.marker)

    def _log(self, report: StateReport) -> None:
        replayed = report.replayed
        logger.info(
            "tables restored",
            extra={
                "snapshotItems": report.restored.items if report.restored else 0,
                "journalRecords": replayed.records if replayed else 0,
                "journalItems": replayed.items if replayed else 0,
                "journalSeconds": round(replayed.seconds, 3) if replayed else 0,
                "uncleanStop": report.unclean_stop,
                "epochsStarted": report.epochs_started,
                "itemsSkipped": len(report.skipped),
                "seconds": round(report.seconds, 3),
            },
        )
