"""The local stack's write-ahead journal: every DynamoDB write, on disk before anyone sees it.

The periodic snapshot (`snapshot`) alone loses whatever was written since it was taken when
the stack dies uncleanly (SIGKILL, power loss), and a restored log head that falls back would
then hand out the same seqs again with other content. So every successful write to moto's
DynamoDB (PutItem, UpdateItem, DeleteItem, TransactWriteItems, and BatchWriteItem, which moto
runs as single puts and deletes) appends one record to a journal file: the full images of the
items it touched, or their keys when deleted. A transaction is one record, appended only when
it commits, so a replay never sees half of one; an image is idempotent, so replaying a record
the snapshot already holds changes nothing.

Durability is a group commit: a record is written (`os.write`, so a killed process loses
nothing the kernel has) while moto's request lock is held, and the local AWS endpoint answers a
request, any request, only once the journal is synced past every record written before the
answer was computed (`wait_durable`). No client, handler or stream reader can therefore see
state that is not on disk, and one `fdatasync` covers every request that waited for it.

Files: `journal/<segment>.jsonl`, one JSON record a line, `{"n": number, "c": [changes]}`.
`rotate()` closes a segment and starts the next, under the request lock together with the
snapshot's capture, so a snapshot covers every record before its mark (`JournalMark`) and the
segments before it can be deleted (`compact`). On start, `replay` applies the records after the
snapshot's mark, in order, and says whether the journal vouches for the whole history: record
numbers without a gap, and nothing unreadable but the torn last line of the newest segment (a
write the kill cut short, which nobody was answered about).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_lambda_powertools import Logger
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

logger = Logger(service="tether-local")

JOURNAL_DIR: Final = "journal"
_SUFFIX: Final = ".jsonl"

# One change: (table key, item key in DynamoDB JSON, the item's image or None when deleted).
Change = tuple[str, dict[str, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class JournalMark:
    """Where a snapshot stands in the journal: it holds every record up to `record`, and the
    records after it are in segment `segment` and later."""

    segment: int = 0
    record: int = 0

    def to_json(self) -> dict[str, int]:
        return {"segment": self.segment, "record": self.record}

    @classmethod
    def from_json(cls, document: Any) -> JournalMark:
        if not isinstance(document, dict):
            return cls()
        return cls(int(document.get("segment", 0)), int(document.get("record", 0)))


@dataclass(frozen=True)
class ReplayReport:
    records: int  # records applied
    items: int  # item images and deletions applied
    last_record: int  # the journal's last record number (the snapshot's when none followed)
    intact: bool  # the journal vouches for every record after the snapshot
    seconds: float
    problems: tuple[str, ...] = ()


def segment_path(directory: Path, segment: int) -> Path:
    return directory / f"{segment:08d}{_SUFFIX}"


def segments(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    numbers = [int(p.stem) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()]
    return sorted(numbers)


class WriteJournal:
    """Appends records to the current segment; a background thread syncs them (group commit)."""

    def __init__(
        self,
        directory: Path,
        *,
        tables: dict[str, str],
        after: JournalMark,
        sync: Callable[[int], None] = os.fdatasync,
    ) -> None:
        """Append after `after` (the last record replayed), in a segment after every one that
        exists and after the snapshot's."""
        self.directory = directory
        self._key_of = {name: key for key, name in tables.items()}
        self._sync = sync
        self._changed = threading.Condition()
        self._appended = self._durable = after.record
        self._closed = False
        directory.mkdir(parents=True, exist_ok=True)
        self._segment = max([after.segment, *segments(directory)]) + 1
        self._fd = self._open(self._segment)
        self._syncer = threading.Thread(target=self._sync_forever, name="tether-journal")
        self._syncer.daemon = True
        self._syncer.start()

    @property
    def appended(self) -> int:
        with self._changed:
            return self._appended

    def append(self, changes: list[Change]) -> int:
        """Write one record of changes (table names, as moto knows them); its number."""
        named = [(self._key_of[t], k, i) for t, k, i in changes if t in self._key_of]
        if not named:
            return self.appended
        with self._changed:
            if self._closed:
                return self._appended
            number = self._appended + 1
            line = json.dumps({"n": number, "c": named}, separators=(",", ":")) + "\n"
            os.write(self._fd, line.encode())
            self._appended = number
            self._changed.notify_all()
            return number

    def wait_durable(self, record: int, timeout: float = 30.0) -> None:
        """Return once every record up to `record` is on disk (or the journal closed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._durable >= record or self._closed, timeout)

    def rotate(self) -> JournalMark:
        """Start a new segment; call with writes excluded (moto's request lock) while the
        snapshot's items are read, so the mark says exactly what the snapshot holds."""
        with self._changed:
            self._sync(self._fd)
            os.close(self._fd)
            self._durable = self._appended
            self._segment += 1
            self._fd = self._open(self._segment)
            self._changed.notify_all()
            return JournalMark(self._segment, self._appended)

    def compact(self, mark: JournalMark) -> int:
        """Delete the segments a snapshot at `mark` holds (it is on disk); how many."""
        covered = [n for n in segments(self.directory) if n < mark.segment]
        for number in covered:
            segment_path(self.directory, number).unlink(missing_ok=True)
        return len(covered)

    def close(self) -> None:
        with self._changed:
            if self._closed:
                return
            self._sync(self._fd)
            os.close(self._fd)
            self._durable = self._appended
            self._closed = True
            self._changed.notify_all()
        self._syncer.join(timeout=5)

    def _open(self, segment: int) -> int:
        fd = os.open(
            segment_path(self.directory, segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        _sync_directory(self.directory)
        return fd

    def _sync_forever(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._appended > self._durable or self._closed)
                if self._closed:
                    return
                target, fd = self._appended, os.dup(self._fd)
            try:
                self._sync(fd)  # outside the lock: appends go on meanwhile (the next group)
            except OSError:
                # The records are in the kernel's hands (a kill loses none); a stack whose
                # answers all hung on a failing disk would help nobody.
                logger.exception("journal sync failed; a power loss could lose recent writes")
            finally:
                os.close(fd)
            with self._changed:
                self._durable = max(self._durable, target)
                self._changed.notify_all()


def _sync_directory(directory: Path) -> None:
    """A new or renamed file survives a power loss only once its directory entry is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replay(
    directory: Path, mark: JournalMark, apply: Callable[[list[Change]], None]
) -> ReplayReport:
    """Apply, in order, every record after `mark`; see the module docstring for `intact`."""
    started = time.perf_counter()
    records = items = 0
    last = mark.record
    problems: list[str] = []
    numbers = [n for n in segments(directory) if n >= mark.segment]
    for position, number in enumerate(numbers):
        newest = position == len(numbers) - 1
        for line_number, record, torn_tail in _read(segment_path(directory, number), newest):
            if record is None:
                if not torn_tail:
                    problems.append(f"segment {number} line {line_number} unreadable")
                continue
            n, changes = record
            if n <= last:
                continue  # held by the snapshot already
            if n != last + 1:
                problems.append(f"records {last + 1}..{n - 1} missing")
            apply(changes)
            records, items, last = records + 1, items + len(changes), n
    return ReplayReport(
        records=records,
        items=items,
        last_record=last,
        intact=not problems,
        seconds=time.perf_counter() - started,
        problems=tuple(problems),
    )


def _read(path: Path, newest: bool) -> Iterator[tuple[int, tuple[int, list[Change]] | None, bool]]:
    """(line number, (record number, changes) or None when unreadable, is the torn tail)."""
    lines = path.read_bytes().split(b"\n")
    complete = lines[:-1]  # a final fragment after the last newline is a torn write
    if lines[-1]:
        complete.append(lines[-1])
    for index, raw in enumerate(complete):
        is_last = index == len(complete) - 1
        try:
            document = json.loads(raw)
            changes = [(str(t), dict(k), i and dict(i)) for t, k, i in document["c"]]
            yield index + 1, (int(document["n"]), changes), False
        except (ValueError, KeyError, TypeError):
            yield index + 1, None, newest and is_last


# -- the moto hook -------------------------------------------------------------------------

_active: WriteJournal | None = None
_hook_lock = threading.Lock()
_hooked = False
_pending = threading.local()


def activate(journal: WriteJournal | None) -> None:
    """Journal moto's DynamoDB writes into `journal` from now on (None: stop)."""
    global _active
    _install_hook()
    _active = journal


def durable_position() -> int:
    """The last record written (0 without a journal): what an answer computed now reflects."""
    journal = _active
    return journal.appended if journal is not None else 0


def wait_durable(record: int) -> None:
    journal = _active
    if journal is not None and record:
        journal.wait_durable(record)


def _install_hook() -> None:
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        for name, key_of in (
            ("put_item", _put_key),
            ("update_item", _given_key),
            ("delete_item", _given_key),
            ("transact_write_items", None),
        ):
            setattr(DynamoDBBackend, name, _recorded(getattr(DynamoDBBackend, name), key_of))
        _hooked = True


KeyOf = Callable[[Table, tuple[Any, ...], dict[str, Any]], dict[str, Any]]


def _put_key(table: Table, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    item = args[1] if len(args) > 1 else kwargs["item_attrs"]
    names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
    return {name: item[name] for name in names}


def _given_key(_table: Table, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    key: dict[str, Any] = args[1] if len(args) > 1 else kwargs["key"]
    return key


def _recorded(method: Callable[..., Any], key_of: KeyOf | None) -> Callable[..., Any]:
    """`method`, journaling the items it wrote once the outermost write succeeded."""

    def recorded(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        journal = _active
        if journal is None:
            return method(self, *args, **kwargs)
        depth: int = getattr(_pending, "depth", 0)
        if depth == 0:
            _pending.touched = []
        _pending.depth = depth + 1
        try:
            result = method(self, *args, **kwargs)
            if key_of is not None:
                table = self.get_table(args[0] if args else kwargs["table_name"])
                _pending.touched.append((table, key_of(table, args, kwargs)))
        finally:
            _pending.depth = depth
        if depth == 0:
            journal.append([_image(self, table, key) for table, key in _pending.touched])
        return result

    return recorded


def _image(backend: DynamoDBBackend, table: Table, key: dict[str, Any]) -> Change:
    hash_key, range_key = backend.get_keys_value(table, key)
    item = table.get_item(hash_key, range_key)
    return (table.name, key, None if item is None else item.to_json()["Attributes"])
