"""What `tether dev` keeps across a restart: every table's items, in one file under `.tether/`.

moto keeps its state in memory only (its recorder replays requests, which would also re-run
every execution), so the local stack dumps the tables' items (DynamoDB JSON, by table key, not
by name) when it stops and writes them back when it starts, before the stream poller begins:
restored messages are history, not news. Written to a temporary file and renamed, so a crash
mid-dump leaves the previous snapshot whole.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SNAPSHOT_FILE: Final = "tables.json"
FORMAT_VERSION: Final = 1
_BATCH: Final = 25  # BatchWriteItem's limit


@dataclass(frozen=True)
class SnapshotReport:
    items: int
    seconds: float
    path: Path


def dump(client: DynamoDBClient, tables: dict[str, str], path: Path) -> SnapshotReport:
    started = time.perf_counter()
    content: dict[str, list[dict[str, Any]]] = {}
    for key, name in tables.items():
        pages = client.get_paginator("scan").paginate(TableName=name)
        content[key] = [item for page in pages for item in page.get("Items", [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        # Tether stores no binary attributes, so DynamoDB JSON is plain JSON here.
        json.dump({"version": FORMAT_VERSION, "tables": content}, handle)
    partial.replace(path)
    count = sum(len(items) for items in content.values())
    return SnapshotReport(count, time.perf_counter() - started, path)


def restore(client: DynamoDBClient, tables: dict[str, str], path: Path) -> SnapshotReport | None:
    """Write a snapshot's items back; None when there is none (a first start)."""
    if not path.exists():
        return None
    started = time.perf_counter()
    document = json.loads(path.read_text())
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown snapshot format {document.get('version')!r}")
    count = 0
    for key, items in document["tables"].items():
        name = tables.get(key)
        if name is None:
            continue  # a table this version no longer has
        for at in range(0, len(items), _BATCH):
            requests: Any = [{"PutRequest": {"Item": item}} for item in items[at : at + _BATCH]]
            pending: Any = {name: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        count += len(items)
    return SnapshotReport(count, time.perf_counter() - started, path)
