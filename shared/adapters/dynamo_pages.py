"""One page of a DynamoDB Query as users expect it: up to `limit` items, and a position to
continue from only if more items exist.

DynamoDB stops at `Limit` *evaluated* items and then returns a LastEvaluatedKey even when
nothing follows, and a FilterExpression can leave a page short. So a page reads one item
beyond `limit`; when that item exists, the next page starts after the last item returned (a
position built from its key), otherwise the listing ends here, with no empty page after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueryPage:
    items: list[Item]
    next_position: Item | None  # the ExclusiveStartKey of the next page; None at the end


def query_page(
    client: DynamoDBClient, query: QueryInputTypeDef, *, limit: int, position: tuple[str, ...]
) -> QueryPage:
    """Run `query` (from its ExclusiveStartKey, if any) for one page of `limit` items;
    `position` names the attributes of an ExclusiveStartKey (`TableSpec.position_attributes`)."""
    items: list[Item] = []
    while len(items) <= limit:
        query["Limit"] = limit + 1 - len(items)
        page = client.query(**query)
        items.extend(page.get("Items", []))
        last = page.get("LastEvaluatedKey")
        if not last:
            break
        query["ExclusiveStartKey"] = last
    if len(items) <= limit:
        return QueryPage(items, None)
    kept = items[:limit]
    return QueryPage(kept, {name: kept[-1][name] for name in position})
