"""The strict layer on real boto3 clients: what DynamoDB refuses comes back as DynamoDB's
ValidationException and nothing is written; pages end where DynamoDB ends them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from infra.local import dynamo_rules
from infra.local.aws import LocalAws
from shared.adapters.dynamo_codec import to_attribute_map
from shared.domain.models import JobRequest
from shared.services.jobs import JobService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def message(job_key: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {"jobKey": {"S": job_key}, "seq": {"N": str(seq)}, **extra}


def refusal(raised: pytest.ExceptionInfo[ClientError]) -> str:
    response = raised.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Message"]


def stored(client: DynamoDBClient, table: str, job_key: str) -> list[dict[str, Any]]:
    return client.query(
        TableName=table,
        KeyConditionExpression="jobKey = :k",
        ExpressionAttributeValues={":k": {"S": job_key}},
    )["Items"]


def test_an_empty_map_key_is_refused_not_stored_mangled(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    # Given a document with an empty key, which moto alone stores as {"M": {"N": "1"}}
    item = {**message("k", 1), **to_attribute_map({"data": {"": 1}})}

    # When it is written, Then DynamoDB's answer comes back and nothing is stored
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName=table_names["messages"], Item=item)
    assert "map key cannot be empty" in refusal(raised)
    assert stored(dynamodb, table_names["messages"], "k") == []


def test_a_job_whose_params_hold_an_empty_key_is_refused_whole(
    service: JobService, dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    # Given params that moto alone stored mangled (the request model refuses them now: built
    # unchecked here, so the store's own refusal is what is tested)
    request = JobRequest.model_construct(
        **JobRequest.model_validate({"type": "demo", "params": {"items": 1}}).__dict__
    ).model_copy(update={"params": {"nested": {"": 1}}})

    # When the job is created, Then DynamoDB's refusal reaches the caller, and no job nor
    # message was written
    with pytest.raises(ClientError) as raised:
        service.create_job(request, tenant_id="acme", owner_id="u1")
    assert "map key cannot be empty" in refusal(raised)
    assert dynamodb.scan(TableName=table_names["jobs"])["Items"] == []
    assert dynamodb.scan(TableName=table_names["messages"])["Items"] == []


def test_a_39_digit_number_and_an_empty_key_are_refused(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    table = table_names["messages"]
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName=table, Item=message("k", 1, n={"N": "1" * 39}))
    assert refusal(raised) == "Attempting to store more than 38 significant digits in a Number"
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName=table, Item=message("", 1))
    assert refusal(raised).endswith("empty string value. Key: jobKey")
    assert dynamodb.scan(TableName=table)["Items"] == []


def test_a_transaction_touching_one_item_twice_is_refused_whole(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    table = table_names["messages"]
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": message("k", 1)}},
                {"Put": {"TableName": table, "Item": message("k", 2)}},
                {"Delete": {"TableName": table, "Key": message("k", 1)}},
            ]
        )
    assert refusal(raised) == "Transaction request cannot include multiple operations on one item"
    assert stored(dynamodb, table, "k") == []


# -- pages ----------------------------------------------------------------------------------


def write_log(client: DynamoDBClient, table: str, seqs: range, **extra: Any) -> None:
    for seq in seqs:
        client.put_item(TableName=table, Item=message("k", seq, **extra))


def test_a_query_that_reaches_its_limit_returns_a_key_even_at_the_end(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    table = table_names["messages"]
    write_log(dynamodb, table, range(1, 3))
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "jobKey = :k",
        "ExpressionAttributeValues": {":k": {"S": "k"}},
        "Limit": 2,
    }

    # When a page of 2 reads the last 2 items, Then (as on AWS) it still returns a key
    first = dynamodb.query(**query)
    assert [i["seq"]["N"] for i in first["Items"]] == ["1", "2"]
    assert first["LastEvaluatedKey"] == message("k", 2)

    # and the page after it is empty and has none
    after = dynamodb.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert (after["Items"], "LastEvaluatedKey" in after) == ([], False)


def test_the_key_is_the_last_evaluated_item_even_when_the_filter_dropped_it(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    table = table_names["messages"]
    write_log(dynamodb, table, range(1, 2), keep={"BOOL": True})
    write_log(dynamodb, table, range(2, 3), keep={"BOOL": False})

    page = dynamodb.query(
        TableName=table,
        KeyConditionExpression="jobKey = :k",
        FilterExpression="keep = :yes",
        ExpressionAttributeValues={":k": {"S": "k"}, ":yes": {"BOOL": True}},
        ProjectionExpression="seq",
        Limit=2,
    )

    assert page["Items"] == [{"seq": {"N": "1"}}]
    assert (page["Count"], page["ScannedCount"]) == (1, 2)
    assert page["LastEvaluatedKey"] == message("k", 2)


def test_a_scan_that_reaches_its_limit_returns_a_key(
    dynamodb: DynamoDBClient, table_names: dict[str, str]
) -> None:
    table = table_names["messages"]
    write_log(dynamodb, table, range(1, 4))

    page = dynamodb.scan(TableName=table, Limit=3)
    unlimited = dynamodb.scan(TableName=table, Limit=4)

    assert page["Count"] == 3
    assert "LastEvaluatedKey" in page
    assert "LastEvaluatedKey" not in unlimited


# -- the local stack ------------------------------------------------------------------------


def test_the_local_stack_installs_the_layer_and_its_clients_get_dynamodbs_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installs: list[bool] = []
    install = dynamo_rules.install

    def counted() -> None:
        installs.append(True)
        install()

    monkeypatch.setattr(dynamo_rules, "install", counted)
    aws = LocalAws(port=0).start()
    try:
        client = aws.dynamodb()
        table = aws.create_tables("strict")["messages"]
        with pytest.raises(ClientError) as raised:
            client.put_item(TableName=table, Item=message("k", 1, n={"N": "1e126"}))
        assert refusal(raised).startswith("Number overflow.")
    finally:
        aws.stop()
    assert installs == [True]
