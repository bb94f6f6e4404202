"""DynamoDB's request rules and page ends, for moto: the strict layer of the tests and local stack.

moto accepts requests DynamoDB refuses (a map with an empty key is stored mangled, a 39-digit
number or a 500 KB item is kept) and ends Query/Scan pages differently. `install()` makes
every boto3 client of the process meet DynamoDB instead; the test suites (tests/conftest.py)
and the local stack (`LocalAws.start`, `tether replay`) call it, product code never does:

* Rules. A botocore `before-call` handler reads each DynamoDB request as it goes on the wire
  (numbers as their `N` strings) and refuses what DynamoDB refuses with what DynamoDB answers:
  HTTP 400 `ValidationException`, which botocore raises as a `ClientError`, so product code
  sees exactly what it would see on AWS. It is added to botocore's builtin handlers, so every
  client created afterwards has it: moto's `mock_aws` replaces boto3's default session, and a
  handler registered on a session would see nothing.
* Pages. moto returns `LastEvaluatedKey` only when more items exist; DynamoDB returns it
  whenever it stopped at `Limit`, even if nothing follows. Query and Scan do the same here.

The rules, from DynamoDB's documented limits (messages worded as DynamoDB's, where known):
attribute names and map keys are not empty; key attributes are not an empty string or binary;
numbers have at most 38 significant digits and a magnitude in [1e-130, 1e126); sets are
neither empty nor hold duplicates; an item is at most 400 KB; BatchWriteItem takes at most 25
requests, BatchGetItem 100 keys, a transaction 100 actions and 4 MB, each on a different item.
Not covered: the size of the item an UpdateItem produces, and expressions' own grammar.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import boto3
from botocore import handlers
from botocore.awsrequest import AWSResponse
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

MAX_ITEM_BYTES: Final = 400 * 1024
MAX_TRANSACTION_ITEMS: Final = 100
MAX_TRANSACTION_BYTES: Final = 4 * 1024 * 1024
MAX_BATCH_WRITE: Final = 25
MAX_BATCH_GET: Final = 100
MAX_DIGITS: Final = 38
MAX_MAGNITUDE: Final = 125  # adjusted exponent: 9.99...e125 is the largest number
MIN_MAGNITUDE: Final = -130  # 1e-130 the smallest non-zero one

_INVALID: Final = "One or more parameter values were invalid"
_NOT_VALID: Final = "One or more parameter values are not valid."
_SET_KINDS: Final = {"SS": "string", "NS": "number", "BS": "binary"}

Json = dict[str, Any]


class RuleViolation(Exception):
    """A request DynamoDB refuses; the message is what DynamoDB says."""


@dataclass(frozen=True, slots=True)
class KeySchema:
    """The key attributes of a table and of each of its indexes."""

    table: tuple[str, ...]
    indexes: Mapping[str, tuple[str, ...]]


SchemaLookup = Callable[[str], KeySchema | None]


# -- attribute values -----------------------------------------------------------------------


def value_size(value: Json) -> int:
    """The size DynamoDB counts for one attribute value, checking its rules on the way.

    DynamoDB's documented item size: names and strings by their UTF-8 length, binaries by
    their length, a number about 1 byte per 2 significant digits plus 1 (plus 1 if negative),
    a boolean or null 1 byte, a list or map 3 bytes plus 1 per element (plus its name). An
    approximation of the service's internal encoding, exact enough that a 400 KB item is
    refused and a 399 KB one is not.
    """
    if len(value) != 1:
        return 0  # malformed: moto itself refuses it
    ((kind, inner),) = value.items()
    if kind == "S":
        return _text_size(inner)
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return _binary_size(inner)
    if kind in _SET_KINDS:
        return _set_size(kind, inner)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + _name_size(name) + value_size(v) for name, v in inner.items())
    return 1  # BOOL, NULL


def number_size(text: str) -> int:
    # Most numbers are short integers (counters, seqs, timestamps): in range by construction.
    digits = text[1:] if text[:1] == "-" else text
    if 0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit():
        significant = len(digits.strip("0"))
        return 2 if not significant else 1 + (significant + 1) // 2 + (digits is not text)
    return _decimal_size(text)


def _decimal_size(text: str) -> int:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    # Python reads "1_000" and " 1" as numbers; DynamoDB does not.
    if not number.is_finite() or text != text.strip() or "_" in text:
        raise RuleViolation(f"The parameter cannot be converted to a numeric value: {text}")
    if number.is_zero():
        return 2
    sign, digits, _ = number.as_tuple()  # no leading zeros; trailing ones are not significant
    significant = len("".join(map(str, digits)).rstrip("0"))
    if number.adjusted() > MAX_MAGNITUDE:
        raise RuleViolation(
            "Number overflow. Attempting to store a number with magnitude larger than "
            "supported range"
        )
    if number.adjusted() < MIN_MAGNITUDE:
        raise RuleViolation(
            "Number underflow. Attempting to store a number with magnitude smaller than "
            "supported range"
        )
    if significant > MAX_DIGITS:
        raise RuleViolation("Attempting to store more than 38 significant digits in a Number")
    return 1 + (significant + 1) // 2 + sign


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _binary_size(encoded: str) -> int:
    """Bytes of a base64 value as it is on the wire, without decoding it."""
    return len(encoded) * 3 // 4 - encoded[-2:].count("=")


def _name_size(name: str) -> int:
    if not name:
        raise RuleViolation(f"{_INVALID}: An attribute name or map key cannot be empty")
    return _text_size(name)


def _set_size(kind: str, elements: list[str]) -> int:
    if not elements:
        raise RuleViolation(f"{_INVALID}: An {_SET_KINDS[kind]} set  may not be empty")
    if kind == "NS":
        size = sum(number_size(element) for element in elements)
        distinct = len({Decimal(element) for element in elements})  # 1 and 1.0 are one
    else:
        measure = _text_size if kind == "SS" else _binary_size
        size = sum(measure(element) for element in elements)
        distinct = len(set(elements))
    if distinct != len(elements):
        listed = ", ".join(elements)
        raise RuleViolation(f"{_INVALID}: Input collection [{listed}] contains duplicates.")
    return size


def item_size(item: Json) -> int:
    """An item's size (see `value_size`): its attributes' names and values."""
    return sum(_name_size(name) + value_size(value) for name, value in item.items())


# -- keys and items -------------------------------------------------------------------------


def check_key(key: Json) -> int:
    """Every attribute of a `Key` is a key attribute: none may be an empty string or binary."""
    for name, value in key.items():
        _check_key_value(name, value)
    return item_size(key)


def _check_key_value(name: str, value: Json, index: str | None = None) -> None:
    empty = next((kind for kind in ("S", "B") if value.get(kind) == ""), None)
    if empty is None:
        return
    kind = "string" if empty == "S" else "binary"
    what = f"The AttributeValue for a key attribute cannot contain an empty {kind} value."
    if index is None:
        raise RuleViolation(f"{_NOT_VALID} {what} Key: {name}")
    raise RuleViolation(
        f"{_NOT_VALID} A value specified for a secondary index key is not supported. "
        f"{what} IndexName: {index}, IndexKey: {name}"
    )


def check_item(item: Json, schema: KeySchema | None) -> int:
    if schema is not None:
        for name in schema.table:
            if name in item:
                _check_key_value(name, item[name])
        for index, names in schema.indexes.items():
            for name in names:
                if name in item:
                    _check_key_value(name, item[name], index)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise RuleViolation("Item size has exceeded the maximum allowed size")
    return size


def _check_expressions(request: Json) -> None:
    for name in request.get("ExpressionAttributeNames", {}).values():
        _name_size(name)
    for value in request.get("ExpressionAttributeValues", {}).values():
        value_size(value)


# -- operations -----------------------------------------------------------------------------


def _put_item(request: Json, schema: SchemaLookup) -> None:
    check_item(request.get("Item", {}), schema(request.get("TableName", "")))
    _check_expressions(request)


def _keyed(request: Json, _: SchemaLookup) -> None:
    check_key(request.get("Key", {}))
    _check_expressions(request)


def _paged(request: Json, _: SchemaLookup) -> None:
    check_key(request.get("ExclusiveStartKey", {}))
    _check_expressions(request)


def _batch_write(request: Json, schema: SchemaLookup) -> None:
    tables: dict[str, list[Json]] = request.get("RequestItems", {})
    for table, writes in tables.items():
        if len(writes) > MAX_BATCH_WRITE:
            raise RuleViolation(
                f"1 validation error detected: Value '{{{table}=[{len(writes)} requests]}}' at "
                "'requestItems' failed to satisfy constraint: Map value must satisfy "
                "constraint: [Member must have length less than or equal to 25, Member must "
                "have length greater than or equal to 1]"
            )
    if sum(len(writes) for writes in tables.values()) > MAX_BATCH_WRITE:
        raise RuleViolation("Too many items requested for the BatchWriteItem call")
    for table, writes in tables.items():
        for write in writes:
            if "PutRequest" in write:
                check_item(write["PutRequest"].get("Item", {}), schema(table))
            else:
                check_key(write.get("DeleteRequest", {}).get("Key", {}))


def _batch_get(request: Json, _: SchemaLookup) -> None:
    reads: dict[str, Json] = request.get("RequestItems", {})
    if sum(len(read.get("Keys", [])) for read in reads.values()) > MAX_BATCH_GET:
        raise RuleViolation("Too many items requested for the BatchGetItem call")
    for read in reads.values():
        for key in read.get("Keys", []):
            check_key(key)
        _check_expressions(read)


def _transaction_length(actions: list[Json]) -> None:
    if len(actions) > MAX_TRANSACTION_ITEMS:
        raise RuleViolation(
            f"1 validation error detected: Value '[{len(actions)} actions]' at 'transactItems' "
            "failed to satisfy constraint: Member must have length less than or equal to 100"
        )


def _transact_write(request: Json, schema: SchemaLookup) -> None:
    actions: list[Json] = request.get("TransactItems", [])
    _transaction_length(actions)
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    total = 0
    for action in actions:
        ((kind, operation),) = action.items()
        table = operation.get("TableName", "")
        if kind == "Put":
            item = operation.get("Item", {})
            table_schema = schema(table)
            total += check_item(item, table_schema)
            key = {n: item.get(n) for n in table_schema.table} if table_schema else None
        else:
            key = operation.get("Key", {})
            total += check_key(key)
        _check_expressions(operation)
        if key is not None:
            identity = (table, tuple(sorted((n, *v.items()) for n, v in key.items() if v)))
            if identity in seen:
                raise RuleViolation(
                    "Transaction request cannot include multiple operations on one item"
                )
            seen.add(identity)
    if total > MAX_TRANSACTION_BYTES:
        raise RuleViolation("Transaction request size has exceeded the maximum allowed size")


def _transact_get(request: Json, _: SchemaLookup) -> None:
    actions: list[Json] = request.get("TransactItems", [])
    _transaction_length(actions)
    for action in actions:
        check_key(action.get("Get", {}).get("Key", {}))


CHECKS: Final[dict[str, Callable[[Json, SchemaLookup], None]]] = {
    "PutItem": _put_item,
    "UpdateItem": _keyed,
    "DeleteItem": _keyed,
    "GetItem": _keyed,
    "Query": _paged,
    "Scan": _paged,
    "BatchWriteItem": _batch_write,
    "BatchGetItem": _batch_get,
    "TransactWriteItems": _transact_write,
    "TransactGetItems": _transact_get,
}


def check_request(operation: str, request: Json, schema: SchemaLookup) -> None:
    """Raise RuleViolation if DynamoDB would refuse `request` (the wire JSON of `operation`)."""
    check = CHECKS.get(operation)
    if check is not None:
        check(request, schema)


# -- the botocore handler -------------------------------------------------------------------


def moto_schemas(region: str) -> SchemaLookup:
    """Key schemas of moto's tables in `region` (tests and the local stack run moto in process)."""

    def lookup(table_name: str) -> KeySchema | None:
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(table_name)
        if table is None:
            return None
        indexes = {
            index.name: tuple(key["AttributeName"] for key in index.schema)
            for index in table.all_indexes()
        }
        names = (table.hash_key_attr, table.range_key_attr)
        return KeySchema(tuple(n for n in names if n), indexes)

    return lookup


def refuse_violations(
    model: Any, params: Json, context: Json, **_: Any
) -> tuple[AWSResponse, Json] | None:
    """botocore `before-call.dynamodb`: answer a request DynamoDB refuses as DynamoDB does."""
    if model.name not in CHECKS:
        return None
    try:
        request = json.loads(params["body"] or b"{}")
        check_request(model.name, request, moto_schemas(context.get("client_region") or ""))
    except RuleViolation as violation:
        return _validation_error(str(violation))
    return None


def _validation_error(message: str) -> tuple[AWSResponse, Json]:
    """What botocore makes of DynamoDB's 400 `ValidationException` answer."""
    request_id = uuid.uuid4().hex
    headers = {"x-amzn-requestid": request_id, "content-type": "application/x-amz-json-1.0"}
    parsed: Json = {
        "Error": {"Code": "ValidationException", "Message": message},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": 400,
            "HTTPHeaders": headers,
            "RetryAttempts": 0,
        },
    }
    return AWSResponse("", 400, headers, None), parsed  # type: ignore[arg-type]  # a mapping is enough


# -- pages ----------------------------------------------------------------------------------


def _ended_at_limit(original: Callable[..., Any], filter_arg: str, projection_arg: str) -> Any:
    """Wrap moto's Table.query/scan: a LastEvaluatedKey whenever `Limit` items were evaluated.

    moto evaluates, then filters and projects; the key must be the last *evaluated* item's,
    which the filter may have dropped, so the wrapper runs the evaluation alone and applies
    the filter and projection itself, as moto does after its loop.
    """
    signature = inspect.signature(original)

    def paged(self: Table, *args: Any, **kwargs: Any) -> tuple[list[Any], int, Any]:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        condition = bound.arguments[filter_arg]
        projection = bound.arguments[projection_arg]
        bound.arguments[filter_arg] = None
        bound.arguments[projection_arg] = None
        items, scanned, last_key = original(*bound.args, **bound.kwargs)
        limit = bound.arguments["limit"]
        if last_key is None and limit and items and len(items) == limit:
            last_key = self._get_last_evaluated_key(items[-1], bound.arguments["index_name"])
        if condition is not None:
            items = [item for item in items if condition.expr(item)]
        if projection:
            items = [item.project(projection) for item in items]
        return items, scanned, last_key

    return paged


_lock = threading.Lock()
_installed: set[str] = set()  # once per process, as moto_patches


def install() -> None:
    """Enforce the rules on every boto3 client created from now on, and end pages as AWS."""
    with _lock:
        if _installed:
            return
        handlers.BUILTIN_HANDLERS.append(("before-call.dynamodb", refuse_violations))
        if boto3.DEFAULT_SESSION is not None:  # clients it creates later get it as well
            boto3.DEFAULT_SESSION.events.register(
                "before-call.dynamodb",
                refuse_violations,  # type: ignore[arg-type]  # a before-call may answer
            )
        Table.query = _ended_at_limit(Table.query, "filter_expression", "projection_expressions")  # type: ignore[method-assign]
        Table.scan = _ended_at_limit(Table.scan, "filter_expression", "projection_expression")  # type: ignore[method-assign]
        _installed.add("rules")
