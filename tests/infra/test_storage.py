"""CDK tests of the `Storage` construct, the stack's outputs and the cdk-nag gate.

Expectations are derived from `shared.tables.TABLES`, so the template and the specs cannot drift
apart unnoticed; a few literal facts (messages: TTL `expiresAt`, stream NEW_IMAGE, ...) keep the
tests from only checking that the code agrees with itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_secretsmanager as secretsmanager

from infra.app import build_app
from infra.cloud.packaging import BUNDLE_CONTEXT_KEY
from shared.constants import (
    ENV_CONNECTIONS_TABLE,
    ENV_DEVICES_TABLE,
    ENV_IDEMPOTENCY_TABLE,
    ENV_JOBS_TABLE,
    ENV_LIMITS_TABLE,
    ENV_MESSAGES_TABLE,
    ENV_SCHEDULES_TABLE,
)
from shared.tables import TABLES, KeyAttribute, TableSpec

if TYPE_CHECKING:
    # Only for annotations: at run time pytest owns conftest, and importing it again under
    # another module name would create a second copy of it.
    from tests.infra.conftest import SynthesizedStack

TABLE = "AWS::DynamoDB::Table"


def _table(stack: SynthesizedStack, key: str) -> dict[str, Any]:
    table = stack.built.stack.storage.tables[key]
    return stack.resources(TABLE)[stack.logical_id_of(table.table_name)]


def _properties(stack: SynthesizedStack, key: str) -> dict[str, Any]:
    properties = _table(stack, key)["Properties"]
    assert isinstance(properties, dict)
    return properties


def _key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


BY_SPEC = pytest.mark.parametrize("spec", TABLES, ids=[spec.key for spec in TABLES])


# --- one table per spec ---------------------------------------------------------------------


def test_storage_builds_exactly_one_table_per_spec(dev_stack: SynthesizedStack) -> None:
    # Given the specs in shared.tables
    expected_keys = {spec.key for spec in TABLES}

    # When the stack is synthesized (fixture)
    tables = dev_stack.built.stack.storage.tables

    # Then each spec has its table, and there are no others
    assert set(tables) == expected_keys
    dev_stack.template.resource_count_is(TABLE, len(TABLES))


@BY_SPEC
def test_table_key_schema_matches_spec(dev_stack: SynthesizedStack, spec: TableSpec) -> None:
    # Given a table spec / When synthesized
    properties = _properties(dev_stack, spec.key)

    # Then the table keys and every attribute used in a key are declared as the spec says
    assert properties["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key)
    declared = {d["AttributeName"]: d["AttributeType"] for d in properties["AttributeDefinitions"]}
    assert declared == {attr.name: attr.type.value for attr in spec.key_attributes}


@BY_SPEC
def test_table_indexes_match_spec(dev_stack: SynthesizedStack, spec: TableSpec) -> None:
    # Given a table spec / When synthesized
    properties = _properties(dev_stack, spec.key)

    # Then every GSI of the spec exists with its keys and projects ALL attributes
    indexes = {index["IndexName"]: index for index in properties.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    for index in spec.indexes:
        assert indexes[index.name]["KeySchema"] == _key_schema(index.partition_key, index.sort_key)
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
    assert "LocalSecondaryIndexes" not in properties


@BY_SPEC
def test_table_ttl_and_stream_match_spec(dev_stack: SynthesizedStack, spec: TableSpec) -> None:
    # Given a table spec / When synthesized
    properties = _properties(dev_stack, spec.key)

    # Then TTL is on exactly when the spec names an attribute, and so is the stream
    if spec.ttl_attribute is None:
        assert "TimeToLiveSpecification" not in properties
    else:
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    if spec.stream is None:
        assert "StreamSpecification" not in properties
    else:
        assert properties["StreamSpecification"] == {"StreamViewType": spec.stream.value}


@BY_SPEC
def test_table_is_on_demand_encrypted_and_named_by_cloudformation(
    dev_stack: SynthesizedStack, spec: TableSpec
) -> None:
    # Given a table spec / When synthesized
    properties = _properties(dev_stack, spec.key)

    # Then it bills per request, is encrypted with the AWS-managed KMS key (SSEEnabled without a
    # key id), and has no fixed name, so stages and replacements cannot collide
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert "TableName" not in properties


# --- literal facts, independent of the specs --------------------------------------------------


def test_messages_table_expires_items_and_streams_new_images(dev_stack: SynthesizedStack) -> None:
    # Given the message log (docs/architecture.md, docs/protocol.md) / When synthesized
    properties = _properties(dev_stack, "messages")

    # Then it is keyed by job and numeric seq, expires on expiresAt, and streams new images
    assert properties["KeySchema"] == [
        {"AttributeName": "jobKey", "KeyType": "HASH"},
        {"AttributeName": "seq", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "seq", "AttributeType": "N"} in properties["AttributeDefinitions"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_jobs_table_has_status_type_and_queue_indexes(dev_stack: SynthesizedStack) -> None:
    # Given the jobs table / When synthesized
    properties = _properties(dev_stack, "jobs")

    # Then the list filters and the per-tenant run queue have their indexes, and no stream
    names = {index["IndexName"] for index in properties["GlobalSecondaryIndexes"]}
    assert names == {"byStatus", "byType", "queue"}
    assert "StreamSpecification" not in properties


def test_idempotency_table_uses_powertools_default_keys(dev_stack: SynthesizedStack) -> None:
    # Given the table Powertools' idempotency layer writes to / When synthesized
    properties = _properties(dev_stack, "idempotency")

    # Then it has Powertools' default key and expiry attributes
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


# --- stages -----------------------------------------------------------------------------------


def test_point_in_time_recovery_is_on_in_every_stage(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    for stack, days in ((dev_stack, 7), (prod_stack, 35)):
        # Given a stage's tables / When synthesized
        tables = stack.resources(TABLE).values()

        # Then every one of them can be restored to any second of the stage's window: prod
        # DynamoDB's maximum (35 days), dev a week
        assert len(tables) == len(TABLES)
        for table in tables:
            assert table["Properties"]["PointInTimeRecoverySpecification"] == {
                "PointInTimeRecoveryEnabled": True,
                "RecoveryPeriodInDays": days,
            }


def test_dev_tables_are_deleted_with_the_stack(dev_stack: SynthesizedStack) -> None:
    # Given the dev stage / When synthesized
    tables = dev_stack.resources(TABLE).values()

    # Then `cdk destroy` removes the tables and nothing blocks it
    for table in tables:
        assert table["DeletionPolicy"] == "Delete"
        assert table["UpdateReplacePolicy"] == "Delete"
        assert table["Properties"]["DeletionProtectionEnabled"] is False


def test_prod_tables_are_retained_and_protected(prod_stack: SynthesizedStack) -> None:
    # Given the prod stage / When synthesized
    tables = prod_stack.resources(TABLE).values()

    # Then deleting or replacing the stack keeps the data, and the tables refuse deletion
    assert prod_stack.built.stack.stack_name == "Tether-prod"
    for table in tables:
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
        assert table["Properties"]["DeletionProtectionEnabled"] is True


def test_unknown_stage_is_rejected(tmp_path: Path) -> None:
    # Given a stage name that is neither dev nor prod / When / Then the app refuses to build
    with pytest.raises(ValueError, match="unknown stage 'staging'"):
        build_app(context={"stage": "staging"}, outdir=str(tmp_path))


# --- what handlers and operators get ----------------------------------------------------------


def test_function_environment_names_every_table(dev_stack: SynthesizedStack) -> None:
    # Given the storage construct
    storage = dev_stack.built.stack.storage

    # When a function asks for its environment
    environment = storage.function_environment()

    # Then it gets exactly the variables the handlers' settings read, each naming its own table
    assert set(environment) == {
        ENV_JOBS_TABLE,
        ENV_MESSAGES_TABLE,
        ENV_CONNECTIONS_TABLE,
        ENV_DEVICES_TABLE,
        ENV_IDEMPOTENCY_TABLE,
        ENV_LIMITS_TABLE,
        ENV_SCHEDULES_TABLE,
    }
    for spec in TABLES:
        expected = dev_stack.logical_id_of(storage.tables[spec.key].table_name)
        assert dev_stack.logical_id_of(environment[spec.env_var]) == expected
    assert dev_stack.logical_id_of(environment[ENV_MESSAGES_TABLE]) != dev_stack.logical_id_of(
        environment[ENV_JOBS_TABLE]
    )


def test_stack_outputs_every_table_name(dev_stack: SynthesizedStack) -> None:
    # Given the synthesized stack
    outputs = dev_stack.template.find_outputs("*")

    # Then each table's generated name is an output, e.g. JobsTableName
    for spec in TABLES:
        table = dev_stack.built.stack.storage.tables[spec.key]
        output = outputs[f"{spec.key.capitalize()}TableName"]
        assert output["Value"] == {"Ref": dev_stack.logical_id_of(table.table_name)}
    assert "MessagesTableName" in outputs


# --- cdk-nag ----------------------------------------------------------------------------------


def test_synth_passes_cdk_nag_in_every_stage(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    for stack in (dev_stack, prod_stack):
        # Given a stage synthesized with the AwsSolutions plugin (fixture; a finding raises)
        report = json.loads((stack.outdir / "validation-report.json").read_text())

        # Then no plugin reported anything unacknowledged, not even a warning: once a stack
        # acknowledges any finding, CDK fails synth on error-level findings only, so this test
        # is what keeps warnings (e.g. AwsSolutions-DDB3) out
        assert [r for r in report["pluginReports"] if r["conclusion"] != "success"] == []
        assert [v for r in report["pluginReports"] for v in r["violations"]] == []


@pytest.mark.parametrize("acknowledged", [False, True], ids=["unacknowledged", "acknowledged"])
def test_cdk_nag_gates_synth_on_unacknowledged_findings(tmp_path: Path, acknowledged: bool) -> None:
    # Given the app as built for a deploy, plus a secret without rotation (an error-level rule)
    built = build_app(context={"stage": "dev", BUNDLE_CONTEXT_KEY: False}, outdir=str(tmp_path))
    unrotated = secretsmanager.CfnSecret(built.stack, "Unrotated")
    if acknowledged:
        Validations.of(unrotated).acknowledge(
            Acknowledgment(id="AwsSolutions-SMG4", reason="test: a deliberate finding")
        )

    # When synthesized / Then cdk-nag fails the synth on the finding, unless acknowledged
    if acknowledged:
        built.app.synth()
        return
    with pytest.raises(RuntimeError, match="AwsSolutions-SMG4"):
        built.app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = [v for r in report["pluginReports"] for v in r["violations"]]
    assert [v["ruleName"] for v in violations] == ["AwsSolutions-SMG4"]
    assert violations[0]["violatingConstructs"][0]["constructPath"] == "Tether-dev/Unrotated"
