"""Makes moto's DynamoDB behave like the service where Tether depends on it.

Two differences matter and both are fixed here, for the tests and for `tether dev` alike
(a third patch, `stream_activity`, only lets the local stream poller sleep until there is news;
a fourth, `plain_attribute_values`, only makes moto answer faster):

* Atomicity. DynamoDB applies every request atomically. moto handles requests from several
  threads at once, and a transaction deep-copies a table while another thread writes to it
  ("dictionary changed size during iteration"). `serialize_requests` runs moto's request
  handling under one lock; clients still race each other exactly as against the service.
* Cost of a transaction. moto snapshots every table a transaction touches with a deep copy so
  that it can roll back, which makes each transaction O(items in the table): a log of a few
  thousand messages makes every progress update take tens of milliseconds. `journal_rollback`
  snapshots only the items the transaction names, and the stream records it appended, and
  restores exactly those on failure: the same all-or-nothing result at O(items in the request).
"""

from __future__ import annotations

import copy
import threading
import types
from collections.abc import Callable
from typing import Any

from moto.core.botocore_stubber import BotocoreStubber
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard, Table

_install_lock = threading.Lock()
_request_lock = threading.RLock()
_installed: set[str] = set()


def serialize_requests() -> None:
    """Handle one in-process moto request at a time, as one DynamoDB item sees them."""
    with _install_lock:
        if "serialize" in _installed:
            return
        original: Callable[..., Any] = BotocoreStubber.process_request

        def atomic(self: BotocoreStubber, request: Any) -> Any:
            with _request_lock:
                return original(self, request)

        BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
        _installed.add("serialize")


def request_lock() -> threading.RLock:
    """The lock `serialize_requests` uses, for a server-mode dispatcher to take as well."""
    return _request_lock


class _TablesAreNotCopied(types.ModuleType):
    """`copy` for moto's DynamoDB models, except that a Table is 'copied' as itself."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _touched(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> list[tuple[Table, Any, Any, Any]]:
    touched = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName", ""))
        source = op.get("Item") if op_type == "Put" else op.get("Key")
        if table is None or not isinstance(source, dict):
            continue
        try:
            hash_key, range_key = backend.get_keys_value(table, source)
        except Exception:  # noqa: S112 - a malformed key: moto itself rejects the request
            continue
        original = table.get_item(hash_key, range_key)
        touched.append((table, hash_key, range_key, copy.deepcopy(original)))
    return touched


def _restore(table: Table, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is not None:
        if item is None:
            table.items[hash_key].pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item


def journal_rollback() -> None:
    """Roll back failed transactions item by item instead of copying whole tables."""
    with _install_lock:
        if "journal" in _installed:
            return
        dynamodb_models.copy = _TablesAreNotCopied("copy")  # type: ignore[attr-defined]
        original: Callable[..., None] = DynamoDBBackend.transact_write_items

        def journaled(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            touched = _touched(self, transact_items)
            shards = {
                id(table.stream_shard): (table.stream_shard, len(table.stream_shard.items))
                for table, *_ in touched
                if table.stream_shard is not None
            }
            try:
                original(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(touched):
                    _restore(table, hash_key, range_key, item)
                for shard, length in shards.values():
                    del shard.items[length:]
                raise

        DynamoDBBackend.transact_write_items = journaled  # type: ignore[method-assign]
        _installed.add("journal")


class StreamActivity:
    """A counter of records appended to any table's stream, and a way to wait for the next one.

    Lambda polls a stream a few times a second; the local poller, in the same process as moto,
    waits here instead, so it answers within milliseconds and costs nothing when idle.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    def generation(self) -> int:
        with self._changed:
            return self._generation

    def notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Until a record is appended after `seen` was read (or `notify`), or `timeout`."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout)


_activity = StreamActivity()


def stream_activity() -> StreamActivity:
    """Patch moto's stream shards to announce every appended record; the announcer."""
    with _install_lock:
        if "activity" not in _installed:
            original: Callable[..., None] = StreamShard.add

            def announced(self: StreamShard, old: Any, new: Any) -> None:
                original(self, old, new)
                _activity.notify()

            StreamShard.add = announced  # type: ignore[method-assign]
            _installed.add("activity")
    return _activity


# AttributeValue members that moto's serializer writes out exactly as they are in its items.
_AS_IS: frozenset[str] = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def _plain(value: Any) -> Any:
    """A DynamoDB-JSON attribute value as moto's serializer would write it, or None when it
    holds a binary (B, BS: base64 is the serializer's business) or is not one at all."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in _AS_IS:
        return {kind: inner}
    if kind == "M" and isinstance(inner, dict):
        members = {name: _plain(member) for name, member in inner.items()}
        return None if None in members.values() else {kind: members}
    if kind == "L" and isinstance(inner, list):
        items = [_plain(item) for item in inner]
        return None if None in items else {kind: items}
    return None


def plain_attribute_values() -> None:
    """Serialize DynamoDB attribute values without moto's generic shape walk.

    moto writes every response by walking the API model: for an attribute value it tries each
    of the ten members of the `AttributeValue` union through five name-alias lookups, which
    makes reading a 30-attribute item cost milliseconds and is most of what a test spends in
    moto. A value already in DynamoDB JSON is written as it is (the walk's result); binaries
    still take the walk.
    """
    with _install_lock:
        if "plain" in _installed:
            return
        original: Callable[..., None] = BaseJSONSerializer._serialize_type_structure

        def plain_first(
            self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
        ) -> None:
            if key and shape.name == "AttributeValue" and "SS" in shape.members:
                plain = _plain(value)
                if plain is not None:
                    self._default_serialize(serialized, plain, shape, key)
                    return
            original(self, serialized, value, shape, key)

        plain_first.__wrapped__ = original  # type: ignore[attr-defined]
        BaseJSONSerializer._serialize_type_structure = plain_first  # type: ignore[method-assign]
        _installed.add("plain")


def install() -> None:
    serialize_requests()
    journal_rollback()
    plain_attribute_values()
