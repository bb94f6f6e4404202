"""The strict layer's rules on wire-format requests: each rule's last accepted and first refused
value, with the message DynamoDB gives (infra/local/dynamo_rules.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from infra.local.dynamo_rules import (
    MAX_ITEM_BYTES,
    KeySchema,
    RuleViolation,
    check_request,
    item_size,
)

SCHEMA = KeySchema(table=("pk", "sk"), indexes={"byOwner": ("owner", "sk")})


def schemas(table: str) -> KeySchema | None:
    return SCHEMA if table == "t" else None


def put(**item: Any) -> dict[str, Any]:
    return {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "s"}, **item}}


def refused(operation: str, request: dict[str, Any]) -> str:
    with pytest.raises(RuleViolation) as caught:
        check_request(operation, request, schemas)
    return str(caught.value)


def accepted(operation: str, request: dict[str, Any]) -> None:
    check_request(operation, request, schemas)


# -- names ----------------------------------------------------------------------------------


def test_an_empty_attribute_name_is_refused() -> None:
    message = refused("PutItem", put(**{"": {"N": "1"}}))
    assert message.endswith("An attribute name or map key cannot be empty")


@pytest.mark.parametrize(
    "value",
    [
        {"M": {"": {"N": "1"}}},
        {"L": [{"M": {"a": {"M": {"": {"S": "x"}}}}}]},
    ],
)
def test_an_empty_map_key_at_any_depth_is_refused(value: dict[str, Any]) -> None:
    assert "map key cannot be empty" in refused("PutItem", put(doc=value))


def test_an_empty_map_key_in_expression_values_or_an_empty_expression_name_is_refused() -> None:
    update = {
        "TableName": "t",
        "Key": {"pk": {"S": "p"}, "sk": {"S": "s"}},
        "UpdateExpression": "SET #d = :d",
        "ExpressionAttributeNames": {"#d": "doc"},
        "ExpressionAttributeValues": {":d": {"M": {"": {"S": "x"}}}},
    }
    assert "cannot be empty" in refused("UpdateItem", update)
    update["ExpressionAttributeValues"] = {":d": {"M": {"k": {"S": "x"}}}}
    accepted("UpdateItem", update)
    update["ExpressionAttributeNames"] = {"#d": ""}
    assert "cannot be empty" in refused("UpdateItem", update)


def test_empty_strings_are_fine_outside_keys() -> None:
    accepted("PutItem", put(note={"S": ""}, blob={"B": ""}, doc={"M": {"k": {"S": ""}}}))


# -- keys -----------------------------------------------------------------------------------


def test_an_empty_string_or_binary_key_is_refused_naming_the_key() -> None:
    assert refused("PutItem", put(sk={"S": ""})) == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute "
        "cannot contain an empty string value. Key: sk"
    )
    key = {"pk": {"S": "p"}, "sk": {"B": ""}}
    assert "empty binary value. Key: sk" in refused("GetItem", {"TableName": "t", "Key": key})
    assert "Key: pk" in refused("DeleteItem", {"TableName": "t", "Key": {"pk": {"S": ""}}})


def test_an_empty_secondary_index_key_is_refused_naming_the_index() -> None:
    assert refused("PutItem", put(owner={"S": ""})).endswith("IndexName: byOwner, IndexKey: owner")
    accepted("PutItem", put(owner={"S": "u1"}))


def test_an_empty_exclusive_start_key_value_is_refused() -> None:
    query = {"TableName": "t", "ExclusiveStartKey": {"pk": {"S": ""}, "sk": {"S": "s"}}}
    assert "Key: pk" in refused("Query", query)


# -- numbers --------------------------------------------------------------------------------

DIGITS_38 = "1234567890" * 3 + "12345678"


@pytest.mark.parametrize(
    "number",
    [
        DIGITS_38,
        "-" + DIGITS_38,
        "0." + DIGITS_38,
        DIGITS_38 + "000",  # trailing zeros are not significant
        "1" + "0" * 100,
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999e125",
        "1e-130",
        "-1E-130",
        "0",
        "-0.000",
    ],
)
def test_numbers_dynamodb_holds_are_accepted(number: str) -> None:
    accepted("PutItem", put(n={"N": number}))


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (DIGITS_38 + "9", "Attempting to store more than 38 significant digits in a Number"),
        ("0." + DIGITS_38 + "9", "more than 38 significant digits"),
        ("1e126", "Number overflow."),
        ("-1E+126", "Number overflow."),
        ("1e-131", "Number underflow."),
        ("-0.9e-130", "Number underflow."),
        ("NaN", "cannot be converted to a numeric value: NaN"),
        ("Infinity", "cannot be converted to a numeric value"),
        ("12abc", "cannot be converted to a numeric value"),
        ("1_000", "cannot be converted to a numeric value"),
        (" 1", "cannot be converted to a numeric value"),
    ],
)
def test_numbers_beyond_dynamodb_are_refused(number: str, message: str) -> None:
    assert message in refused("PutItem", put(n={"N": number}))


def test_numbers_are_checked_in_sets_lists_maps_and_expression_values() -> None:
    big = {"N": "1e126"}
    assert "overflow" in refused("PutItem", put(ns={"NS": ["1", "1e126"]}))
    assert "overflow" in refused("PutItem", put(doc={"M": {"l": {"L": [big]}}}))
    query = {"TableName": "t", "ExpressionAttributeValues": {":n": big}}
    assert "overflow" in refused("Query", query)


# -- sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "word"), [("SS", "string"), ("NS", "number"), ("BS", "binary")])
def test_an_empty_set_is_refused(kind: str, word: str) -> None:
    assert refused("PutItem", put(s={kind: []})) == (
        f"One or more parameter values were invalid: An {word} set  may not be empty"
    )


@pytest.mark.parametrize(
    "value",
    [{"SS": ["a", "b", "a"]}, {"NS": ["1", "1.0"]}, {"BS": ["AQ==", "AQ=="]}],
)
def test_duplicate_set_elements_are_refused(value: dict[str, list[str]]) -> None:
    assert "contains duplicates" in refused("PutItem", put(s=value))


def test_distinct_set_elements_are_accepted() -> None:
    sets = {"ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AQ==", "Ag=="]}}
    accepted("PutItem", put(**sets))


# -- item size ------------------------------------------------------------------------------


def padded_item(size: int) -> dict[str, Any]:
    """An item of exactly `size` bytes as DynamoDB counts them."""
    base = {"pk": {"S": "p"}, "sk": {"S": "s"}, "pad": {"S": ""}}
    base["pad"] = {"S": "x" * (size - item_size(base))}
    assert item_size(base) == size
    return base


def test_a_400_kb_item_is_accepted_and_one_byte_more_refused() -> None:
    accepted("PutItem", {"TableName": "t", "Item": padded_item(MAX_ITEM_BYTES)})
    accepted("PutItem", {"TableName": "t", "Item": padded_item(399 * 1024)})
    over = {"TableName": "t", "Item": padded_item(MAX_ITEM_BYTES + 1)}
    assert refused("PutItem", over) == "Item size has exceeded the maximum allowed size"


def test_item_size_counts_utf8_names_and_values_and_binary_bytes() -> None:
    # "é" is 2 bytes in UTF-8; 4 base64 characters "AAE=" are 2 bytes
    assert item_size({"é": {"S": "éé"}}) == 2 + 4
    assert item_size({"b": {"B": base64.b64encode(b"\x00\x01").decode()}}) == 1 + 2
    # a number: 1 byte per 2 significant digits plus 1; a map: 3 plus 1 per element
    assert item_size({"n": {"N": "12345"}}) == 1 + 1 + 3
    assert item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1


def test_batch_write_and_transaction_items_are_size_checked() -> None:
    big = padded_item(MAX_ITEM_BYTES + 1)
    batch = {"RequestItems": {"t": [{"PutRequest": {"Item": big}}]}}
    assert "Item size has exceeded" in refused("BatchWriteItem", batch)
    transaction = {"TransactItems": [{"Put": {"TableName": "t", "Item": big}}]}
    assert "Item size has exceeded" in refused("TransactWriteItems", transaction)


# -- batches and transactions ---------------------------------------------------------------


def keyed(i: int) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": f"s{i}"}}


def puts(count: int) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": keyed(i)}} for i in range(count)]


def test_batch_write_takes_25_requests_not_26() -> None:
    accepted("BatchWriteItem", {"RequestItems": {"t": puts(25)}})
    assert "Member must have length less than or equal to 25" in refused(
        "BatchWriteItem", {"RequestItems": {"t": puts(26)}}
    )
    two_tables = {"RequestItems": {"t": puts(13), "u": puts(13)}}
    assert refused("BatchWriteItem", two_tables) == (
        "Too many items requested for the BatchWriteItem call"
    )


def test_batch_get_takes_100_keys_not_101() -> None:
    accepted("BatchGetItem", {"RequestItems": {"t": {"Keys": [keyed(i) for i in range(100)]}}})
    too_many = {"RequestItems": {"t": {"Keys": [keyed(i) for i in range(101)]}}}
    assert refused("BatchGetItem", too_many) == "Too many items requested for the BatchGetItem call"


def transaction(count: int, item: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {**(item or {}), **keyed(i)}}} for i in range(count)
        ]
    }


def test_a_transaction_takes_100_actions_not_101() -> None:
    accepted("TransactWriteItems", transaction(100))
    assert "Member must have length less than or equal to 100" in refused(
        "TransactWriteItems", transaction(101)
    )
    gets = {"TransactItems": [{"Get": {"TableName": "t", "Key": keyed(i)}} for i in range(101)]}
    assert "less than or equal to 100" in refused("TransactGetItems", gets)


def test_a_transaction_takes_4_mb_not_more() -> None:
    # Eleven items of 380 KB are 4,180 KB: over 4 MB; ten are 3,800 KB.
    pad = {"pad": {"S": "x" * (380 * 1024)}}
    accepted("TransactWriteItems", transaction(10, pad))
    assert "Transaction request size has exceeded" in refused(
        "TransactWriteItems", transaction(11, pad)
    )


def test_a_transaction_touching_one_item_twice_is_refused() -> None:
    twice = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {**keyed(1), "a": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": keyed(1), "ConditionExpression": "x"}},
        ]
    }
    assert refused("TransactWriteItems", twice) == (
        "Transaction request cannot include multiple operations on one item"
    )
    other_table = {
        "TransactItems": [
            {"Update": {"TableName": "t", "Key": keyed(1), "UpdateExpression": "SET a = :a"}},
            {"Delete": {"TableName": "u", "Key": keyed(1)}},
        ]
    }
    accepted("TransactWriteItems", other_table)
