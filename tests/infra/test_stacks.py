"""CDK tests of the app's split into a stateful and a stateless stack.

Data (tables, the import bucket, the signing secrets) lives in `Tether-{stage}-data`; code,
APIs, the state machine, rules and the web console (a bucket of files rebuilt from this
repository by every deploy, no data) in `Tether-{stage}`. References go from the stateless stack
to the stateful one only, as strong references (exports and `Fn::ImportValue`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::SecretsManager::Secret",
}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_data_lives_in_the_stateful_stack_only(
    stage: str, dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given a stage's two stacks / When synthesized
    stack = dev_stack if stage == "dev" else prod_stack
    stateful_types = {r["Type"] for r in stack.stateful.to_json()["Resources"].values()}
    stateless_types = {r["Type"] for r in stack.stateless.to_json()["Resources"].values()}

    # Then every stateful resource is in the data stack, which holds nothing else, and the
    # stateless stack holds none of them but the console's bucket (and its policy)
    assert stateful_types == STATEFUL_TYPES
    assert stateless_types & STATEFUL_TYPES == {"AWS::S3::Bucket", "AWS::S3::BucketPolicy"}
    buckets = stack.stateless.find_resources("AWS::S3::Bucket")
    assert list(buckets) == [stack.logical_id_of_construct(stack.built.stack.console.bucket)]
    assert "AWS::Lambda::Function" in stateless_types
    assert "AWS::StepFunctions::StateMachine" in stateless_types
    assert stack.built.stateful.stack_name == f"Tether-{stage}-data"
    assert stack.built.stack.stack_name == f"Tether-{stage}"


def test_references_go_from_stateless_to_stateful_only(dev_stack: SynthesizedStack) -> None:
    # Given the two stacks / When synthesized
    stateful = json.dumps(dev_stack.stateful.to_json())
    stateless = json.dumps(dev_stack.stateless.to_json())

    # Then the stateless stack depends on the stateful one and imports its exports, and the
    # stateful stack imports nothing (no cycle: it deploys first and alone)
    assert dev_stack.built.stateful in dev_stack.built.stack.dependencies
    assert dev_stack.built.stack not in dev_stack.built.stateful.dependencies
    assert "Fn::ImportValue" not in stateful
    assert "Fn::GetStackOutput" not in stateless
    imported = {name for name in dev_stack.exports if f'"Fn::ImportValue": "{name}"' in stateless}
    assert imported == set(dev_stack.exports)
    # Every table, the bucket and both secrets are used from the stateless stack
    assert len(imported) >= 7


def test_the_stages_are_separate_stacks(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given both stages / When synthesized
    names = {
        stack.stack_name
        for synthesized in (dev_stack, prod_stack)
        for stack in synthesized.built.stacks
    }

    # Then each stage has its own pair of stacks, so dev and prod can share an account
    assert names == {"Tether-dev-data", "Tether-dev", "Tether-prod-data", "Tether-prod"}
