"""Fixtures for the CDK tests: the Tether app of each stage, built and synthesized once per session.

Synthesis costs seconds (jsii start, then ~0.5 s per app), so every test reads the same
synthesized template instead of building its own. The apps come from `infra.app.build_app`,
so they carry the cdk-nag plugin exactly as `make synth` and `cdk deploy` do; a nag finding
fails the fixture's synth. Bundling is off (`tether:bundle=false`): the dependencies layer is a
placeholder, so the tests need neither uv nor the network.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import TetherApp, build_app
from infra.cloud.packaging import BUNDLE_CONTEXT_KEY
from infra.cloud.stage import DeploymentStage


@dataclass(frozen=True, slots=True)
class SynthesizedStack:
    """A built app, its stack's template, and the assembly directory synth wrote to."""

    built: TetherApp
    template: Template
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id → resource (`Type`, `Properties`, policies) of one type."""
        return {
            logical_id: dict(resource)
            for logical_id, resource in self.template.find_resources(resource_type).items()
        }

    def logical_id_of(self, token: str) -> str:
        """The logical id a `{"Ref": ...}` token (e.g. `table.table_name`) points at."""
        resolved = self.built.stack.resolve(token)
        assert isinstance(resolved, dict), resolved
        ref = resolved["Ref"]
        assert isinstance(ref, str)
        return ref


def _synthesize(stage: DeploymentStage, outdir: Path) -> SynthesizedStack:
    built = build_app(context={"stage": stage.value, BUNDLE_CONTEXT_KEY: False}, outdir=str(outdir))
    return SynthesizedStack(built=built, template=Template.from_stack(built.stack), outdir=outdir)


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return _synthesize(DeploymentStage.DEV, tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod_stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return _synthesize(DeploymentStage.PROD, tmp_path_factory.mktemp("cdk-prod"))
