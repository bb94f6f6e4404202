"""moto_patches' fast attribute-value serializer writes exactly what moto's own would."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.core.serialize import BaseJSONSerializer, get_serializer_class
from moto.core.utils import get_service_model

from infra.local import moto_patches

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Every kind of attribute value, nested in maps and lists, binaries among them.
ITEM: dict[str, Any] = {
    "pk": {"S": "job#1"},
    "seq": {"N": "42"},
    "blob": {"B": b"\x00\xffraw"},
    "done": {"BOOL": False},
    "nothing": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", b"y"]},
    "counters": {"M": {"ok": {"N": "3"}, "deep": {"M": {"name": {"S": "z"}}}}},
    "with_blob": {"M": {"raw": {"B": b"\x01"}, "list": {"L": [{"B": b"\x02"}]}}},
    "log": {"L": [{"S": "x"}, {"N": "1"}, {"L": [{"BOOL": True}]}, {"M": {}}]},
    "empty": {"L": []},
}


def _serialize(serializer_class: type[Any], item: dict[str, Any]) -> Any:
    model = get_service_model("dynamodb").operation_model("GetItem")
    serializer = serializer_class(operation_model=model)
    return json.loads(serializer.serialize({"Item": item})["body"])


def test_attribute_values_are_written_as_moto_writes_them() -> None:
    # Given moto's serializer for DynamoDB, patched, and the same class with its own walk
    moto_patches.plain_attribute_values()
    patched = get_serializer_class("dynamodb", "json")
    assert issubclass(patched, BaseJSONSerializer)
    walk = BaseJSONSerializer._serialize_type_structure.__wrapped__  # type: ignore[attr-defined]
    reference = type("Reference", (patched,), {"_serialize_type_structure": walk})

    # When both write an item holding every kind of value
    # Then they write the same JSON
    assert _serialize(patched, ITEM) == _serialize(reference, ITEM)


def test_items_read_back_equal_what_was_written(dynamodb: DynamoDBClient) -> None:
    # Given moto with the patch (the dynamodb fixture installs it) and a table
    dynamodb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )

    # When an item with every kind of value is written and read back through boto3
    dynamodb.put_item(TableName="t", Item=ITEM)
    read = dynamodb.get_item(TableName="t", Key={"pk": {"S": "job#1"}}, ConsistentRead=True)

    # Then it is the same item (sets come back as sets: compare them unordered)
    def canonical(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: sorted(v) if k in {"SS", "NS", "BS"} else canonical(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    assert canonical(read["Item"]) == canonical(ITEM)
