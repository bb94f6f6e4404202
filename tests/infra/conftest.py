"""Fixtures for the CDK tests: the Tether app of each stage, built and synthesized once per session.

Synthesis costs seconds (jsii start, then ~0.5 s per app), so every test reads the same
synthesized template instead of building its own. The apps come from `infra.app.build_app`,
so they carry the cdk-nag plugin exactly as `make synth` and `cdk deploy` do; a nag finding
fails the fixture's synth. Bundling is off (`tether:bundle=false`): the dependencies layer is a
placeholder, so the tests need neither uv nor the network.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.app import TetherApp, build_app
from infra.cloud.packaging import BUNDLE_CONTEXT_KEY
from infra.cloud.push import APNS_CONTEXT, APNS_SANDBOX_CONTEXT, FCM_CONTEXT, GRACE_CONTEXT
from infra.cloud.stage import DeploymentStage


@dataclass(frozen=True, slots=True)
class SynthesizedStack:
    """A built app, its stacks' templates, and the assembly directory synth wrote to.

    `template` is the whole app as one template: the stateless stack's resources and outputs
    plus the stateful stack's, with every `Fn::ImportValue` replaced by the exported value (a
    `Ref`/`GetAtt` of the stateful resource). Assertions about what references what read the
    same whichever stack a resource lives in; `stateful` and `stateless` are the real templates,
    for assertions about the split itself.
    """

    built: TetherApp
    template: Template
    outdir: Path
    stateful: Template
    stateless: Template
    exports: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id → resource (`Type`, `Properties`, policies) of one type."""
        return {
            logical_id: dict(resource)
            for logical_id, resource in self.template.find_resources(resource_type).items()
        }

    def tether_functions(self) -> dict[str, dict[str, Any]]:
        """Tether's own Lambda functions (handlers in `functions/`): every function but the
        one aws-cdk-lib adds to copy the web console into its bucket during a deploy."""
        functions = self.resources("AWS::Lambda::Function")
        ours = {
            logical_id: function
            for logical_id, function in functions.items()
            if function["Properties"]["Handler"].startswith("functions.")
        }
        cdk_made = set(functions) - set(ours)
        assert [name.startswith("CustomCDKBucketDeployment") for name in cdk_made] == [True]
        return ours

    def logical_id_of_construct(self, construct: IConstruct) -> str:
        """The logical id of an L2 construct's CloudFormation resource (its default child)."""
        child = construct.node.default_child
        assert isinstance(child, CfnElement), construct.node.path
        return Stack.of(child).get_logical_id(child)

    def logical_id_of(self, token: str) -> str:
        """The logical id a `{"Ref": ...}` token (e.g. `table.table_name`) points at."""
        resolved = self.built.stack.resolve(token)
        assert isinstance(resolved, dict), resolved
        if "Fn::ImportValue" in resolved:
            resolved = self.exports[resolved["Fn::ImportValue"]]
        ref = resolved["Ref"]
        assert isinstance(ref, str)
        return ref


def _synthesize(stage: DeploymentStage, outdir: Path) -> SynthesizedStack:
    built = build_app(context={"stage": stage.value, BUNDLE_CONTEXT_KEY: False}, outdir=str(outdir))
    return synthesize(built, outdir)


def synthesize(built: TetherApp, outdir: Path) -> SynthesizedStack:
    """Synthesize `built` (into `outdir`, where build_app was told to write) for assertions."""
    stateful = Template.from_stack(built.stateful)
    stateless = Template.from_stack(built.stack)
    exports = {
        output["Export"]["Name"]: output["Value"]
        for output in stateful.to_json().get("Outputs", {}).values()
        if "Export" in output
    }
    return SynthesizedStack(
        built=built,
        template=Template.from_json(merged_template(stateful, stateless, exports)),
        outdir=outdir,
        stateful=stateful,
        stateless=stateless,
        exports=exports,
    )


def merged_template(
    stateful: Template, stateless: Template, exports: dict[str, Any]
) -> dict[str, Any]:
    """Both stacks as one template, imports replaced by what they import (see SynthesizedStack)."""
    consumer = _resolve_imports(stateless.to_json(), exports)
    producer = stateful.to_json()
    merged: dict[str, Any] = {}
    for section in ("Resources", "Outputs", "Conditions", "Parameters", "Rules"):
        ours = consumer.get(section, {})
        theirs = producer.get(section, {})
        # CDK's own bookkeeping (the bootstrap version check) is in both stacks, alike.
        clashes = {key for key in set(ours) & set(theirs) if ours[key] != theirs[key]}
        assert not clashes, f"{section}: both stacks define {sorted(clashes)}"
        merged[section] = {**theirs, **ours}
    return merged


def _resolve_imports(value: Any, exports: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::ImportValue"}:
            name = value["Fn::ImportValue"]
            assert name in exports, f"imports {name}, which the stateful stack does not export"
            return exports[name]
        return {key: _resolve_imports(item, exports) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_imports(item, exports) for item in value]
    return value


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return _synthesize(DeploymentStage.DEV, tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod_stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return _synthesize(DeploymentStage.PROD, tmp_path_factory.mktemp("cdk-prod"))


APNS: Final = "arn:aws:sns:eu-west-1:123456789012:app/APNS/tether-prod"
APNS_SANDBOX: Final = "arn:aws:sns:eu-west-1:123456789012:app/APNS_SANDBOX/tether-dev"
FCM: Final = "arn:aws:sns:eu-west-1:123456789012:app/GCM/tether-android"


@pytest.fixture(scope="session")
def push_stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """The dev stack with all three push applications configured (the dev stack has none)."""
    outdir = tmp_path_factory.mktemp("cdk-push")
    context = {
        "stage": "dev",
        BUNDLE_CONTEXT_KEY: False,
        APNS_CONTEXT: APNS,
        APNS_SANDBOX_CONTEXT: APNS_SANDBOX,
        FCM_CONTEXT: FCM,
        GRACE_CONTEXT: 20,
    }
    return synthesize(build_app(context=context, outdir=str(outdir)), outdir)
