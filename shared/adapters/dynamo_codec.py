"""Plain JSON documents to DynamoDB attribute maps and back.

DynamoDB wants Decimal for every number and gives Decimal back; the domain wants int and
float. Both directions go through here so no other module handles Decimal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

AttributeMap = dict[str, "AttributeValueTypeDef"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attribute_map(document: Mapping[str, Any]) -> AttributeMap:
    # A JSON round trip turns floats into Decimal exactly as written, not as binary floats.
    plain = json.loads(json.dumps(document, separators=(",", ":")), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in plain.items()}


def to_attribute(value: Any) -> AttributeValueTypeDef:
    return _serializer.serialize(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def from_attribute_map(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}
