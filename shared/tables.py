"""The DynamoDB tables of Tether, described once as data.

The CDK `Storage` construct and the local/moto table creator both build their tables from
`TABLES`, so the cloud and the local stack cannot disagree on keys, indexes, TTL or streams.
Pure data: no boto3, no CDK imports here.

Item shapes (keys only; the adapters own the rest):

* jobs: `tenantId` / `jobId`. Job ids sort by creation time. Derived index keys:
  `tenantStatus` = "{tenant}#{status}", `tenantType` = "{tenant}#{type}", and, only while a
  job is `queued`, `queueTenant` = tenant with `queueRank` = "{priority rank}#{createdAt}#{jobId}"
  (a sparse index: the per-tenant run queue, highest priority first, oldest first).
  Terminal jobs carry `expiresAt` (TTL) 30 days after `finishedAt`.
* messages: `jobKey` = "{tenant}#{jobId}" / `seq` (number): the gap-free log of one job.
  `expiresAt` (TTL) 24 h after the message was written. The stream (NEW_IMAGE) drives delivery.
* connections: `pk` / `sk`, several item kinds: a connection ("CONN#{id}" / "META"), its
  subscriptions ("CONN#{id}" / "SUB#{jobKey}", carrying `jobKey` and `connectionId` for the
  sparse `byJob` index the dispatcher queries) and delivery cursors per user and job.
  `expiresAt` (TTL) past API Gateway's 2 h connection limit.
* devices: `ownerKey` = "{tenant}#{ownerId}" / `deviceId`: push endpoints of one user.
* idempotency: Powertools' idempotency persistence layer (its default `id` / `expiration`).
* limits: fixed-window request counters, `bucket` = "{tenant}#{action}#{window start}", with
  `expiresAt` (TTL) shortly after the window ends. Also, without TTL, one run-slot item per
  tenant (`bucket` = "slots#{tenant}": the set of jobs holding a slot) and the
  cleanup's lease and last run ("cleanup#lease", "cleanup#state").
* schedules: `tenantId` / `scheduleId`: recurring schedules, their job request and recent runs.
  A table of its own because it is listed per tenant (the jobs table's tenant
  partition would mix schedules into every job listing and its indexes) and it never expires.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from shared import constants


class AttributeType(StrEnum):
    STRING = "S"
    NUMBER = "N"


class StreamView(StrEnum):
    NEW_IMAGE = "NEW_IMAGE"


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: AttributeType = AttributeType.STRING


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A global secondary index, projecting all attributes."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What a table is, independent of where it is created."""

    key: str  # logical name: CDK construct id and local table-name suffix
    env_var: str  # the environment variable through which handlers find the table's name
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    ttl_attribute: str | None = None
    stream: StreamView | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)

    def local_name(self, prefix: str) -> str:
        return f"{prefix}-{self.key}"

    def position_attributes(self, index: str | None = None) -> tuple[str, ...]:
        """The attributes of a position in a Query of the table or of one of its indexes
        (an ExclusiveStartKey): the table's key, plus the index's key."""
        names = [attr.name for attr in (self.partition_key, self.sort_key) if attr is not None]
        if index is not None:
            spec = next(i for i in self.indexes if i.name == index)
            names += [a.name for a in (spec.partition_key, spec.sort_key) if a is not None]
        return tuple(dict.fromkeys(names))

    @property
    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute used in a key of the table or its indexes, each once."""
        seen: dict[str, KeyAttribute] = {}
        for attr in (self.partition_key, self.sort_key):
            if attr is not None:
                seen.setdefault(attr.name, attr)
        for index in self.indexes:
            for attr in (index.partition_key, index.sort_key):
                if attr is not None:
                    seen.setdefault(attr.name, attr)
        return tuple(seen.values())


JOBS: Final = TableSpec(
    key="jobs",
    env_var=constants.ENV_JOBS_TABLE,
    partition_key=KeyAttribute("tenantId"),
    sort_key=KeyAttribute("jobId"),
    ttl_attribute="expiresAt",
    indexes=(
        IndexSpec("byStatus", KeyAttribute("tenantStatus"), KeyAttribute("jobId")),
        IndexSpec("byType", KeyAttribute("tenantType"), KeyAttribute("jobId")),
        IndexSpec("queue", KeyAttribute("queueTenant"), KeyAttribute("queueRank")),
    ),
)

MESSAGES: Final = TableSpec(
    key="messages",
    env_var=constants.ENV_MESSAGES_TABLE,
    partition_key=KeyAttribute("jobKey"),
    sort_key=KeyAttribute("seq", AttributeType.NUMBER),
    ttl_attribute="expiresAt",
    stream=StreamView.NEW_IMAGE,
)

CONNECTIONS: Final = TableSpec(
    key="connections",
    env_var=constants.ENV_CONNECTIONS_TABLE,
    partition_key=KeyAttribute("pk"),
    sort_key=KeyAttribute("sk"),
    ttl_attribute="expiresAt",
    indexes=(IndexSpec("byJob", KeyAttribute("jobKey"), KeyAttribute("connectionId")),),
)

DEVICES: Final = TableSpec(
    key="devices",
    env_var=constants.ENV_DEVICES_TABLE,
    partition_key=KeyAttribute("ownerKey"),
    sort_key=KeyAttribute("deviceId"),
)

IDEMPOTENCY: Final = TableSpec(
    key="idempotency",
    env_var=constants.ENV_IDEMPOTENCY_TABLE,
    partition_key=KeyAttribute("id"),
    ttl_attribute="expiration",
)

LIMITS: Final = TableSpec(
    key="limits",
    env_var=constants.ENV_LIMITS_TABLE,
    partition_key=KeyAttribute("bucket"),
    ttl_attribute="expiresAt",
)

SCHEDULES: Final = TableSpec(
    key="schedules",
    env_var=constants.ENV_SCHEDULES_TABLE,
    partition_key=KeyAttribute("tenantId"),
    sort_key=KeyAttribute("scheduleId"),
)

TABLES: Final = (JOBS, MESSAGES, CONNECTIONS, DEVICES, IDEMPOTENCY, LIMITS, SCHEDULES)
