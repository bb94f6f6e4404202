"""The local stack's AWS: moto in server mode, atomic requests, cheap and exact rollback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from infra.cli import main
from infra.local.aws import LocalAws
from infra.local.secrets import local_secrets
from shared.auth_settings import authenticator_from
from shared.domain.auth import Principal, Scope
from shared.domain.clock import SystemClock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def test_tether_dev_once_starts_the_whole_stack_and_stops_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # When a newcomer's `tether dev` starts (here on free ports, stopping once it is ready)
    assert main(["dev", "--port", "0", "--once", "--state-dir", str(tmp_path)]) == 0

    # Then it printed where everything is, and a token the local stack's verifier accepts
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out
    assert "/ws" in out
    lines = out.splitlines()
    token = lines[next(i for i, line in enumerate(lines) if line.startswith("dev token")) + 1]
    principal = _authenticate(tmp_path, token.strip())
    assert (principal.tenant_id, principal.subject) == ("local", "dev")
    # and stopping removed the address file and saved the tables for the next start
    assert not (tmp_path / "dev.json").exists()
    assert (tmp_path / "tables.json").stat().st_mode & 0o777 == 0o600
    assert "stopped" in out


def test_tether_token_mints_for_the_same_local_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["token", "--tenant", "acme", "--user", "bob", "--scope", "jobs:read"]
    assert main([*args, "--state-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    principal = _authenticate(tmp_path, token)
    assert (principal.tenant_id, principal.subject) == ("acme", "bob")
    assert principal.scopes == {Scope.JOBS_READ}
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def _authenticate(state_dir: Path, token: str) -> Principal:
    settings = local_secrets(state_dir).auth_settings()
    return authenticator_from(settings, SystemClock()).authenticate(token)


def test_a_failed_transaction_rolls_back_items_and_stream_records() -> None:
    aws = LocalAws(port=0).start()
    try:
        client: DynamoDBClient = aws.dynamodb()
        names = aws.create_tables("rb")
        messages = names["messages"]
        client.put_item(TableName=messages, Item={"jobKey": {"S": "k"}, "seq": {"N": "2"}})
        shard_before = _stream_records(client, messages)

        # When a transaction writes seq 1, then collides on seq 2
        with pytest.raises(ClientError) as raised:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": messages,
                            "Item": {"jobKey": {"S": "k"}, "seq": {"N": n}},
                            "ConditionExpression": "attribute_not_exists(seq)",
                        }
                    }
                    for n in ("1", "2")
                ]
            )

        # Then nothing of it is left: no item, no stream record
        assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
        reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
        assert reasons == ["None", "ConditionalCheckFailed"]
        left = client.query(
            TableName=messages,
            KeyConditionExpression="jobKey = :k",
            ExpressionAttributeValues={":k": {"S": "k"}},
        )
        assert [item["seq"]["N"] for item in left["Items"]] == ["2"]
        assert _stream_records(client, messages) == shard_before
    finally:
        aws.stop()


def _stream_records(client: DynamoDBClient, table: str) -> int:
    import boto3
    from botocore.config import Config

    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=client.meta.endpoint_url,
        region_name="us-east-1",
        config=Config(account_id_endpoint_mode="disabled"),
    )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return len(streams.get_records(ShardIterator=iterator)["Records"])


def test_tether_dev_on_a_taken_port_says_so_and_leaves_nothing_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        assert main(["dev", "--port", str(port), "--once", "--state-dir", str(tmp_path)]) == 1

    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().out
    assert not (tmp_path / "dev.json").exists()
