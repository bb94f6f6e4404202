"""The Tether CDK app: the entry point `cdk.json` and `make synth` run (`python -m infra.app`).

`build_app` assembles the app (context, stage, tags, the cdk-nag validation plugin, the stack)
without synthesizing it, so tests get the exact app a deploy would get; `main` synthesizes it
into `$CDK_OUTDIR` (set by the CDK CLI) or `cdk.out`.
"""

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_cdk import App, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.cloud.stack import TetherStack
from infra.cloud.stage import DeploymentStage
from infra.cloud.stateful import TetherStatefulStack
from infra.console import static_files
from shared.constants import SERVICE_NAME

CDK_JSON: Final = Path(__file__).resolve().parent.parent / "cdk.json"
DEFAULT_OUTDIR: Final = "cdk.out"
STAGE_CONTEXT_KEY: Final = "stage"


@dataclass(frozen=True, slots=True)
class TetherApp:
    """A built, not yet synthesized, app and its stack."""

    app: App
    stateful: TetherStatefulStack
    stack: TetherStack

    @property
    def stacks(self) -> tuple[Stack, ...]:
        """Both stacks, in deploy order (the stateful one first)."""
        return (self.stateful, self.stack)


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
) -> TetherApp:
    """The Tether app with every check a deploy runs, ready for `app.synth()`.

    `context` overrides everything else (cdk.json, `-c` on the CLI); tests use it to pin the
    stage. `outdir` defaults to `$CDK_OUTDIR`, then `cdk.out`.
    """
    app = App(
        # cdk.json's context (feature flags) is passed by the CLI, but not when the app runs as
        # `python -m infra.app` or in pytest; reading it here makes all three synthesize the
        # same template. Context from the CLI still wins over these defaults.
        context=_cdk_json_context(),
        post_cli_context=dict(context or {}),
        outdir=outdir or os.environ.get("CDK_OUTDIR", DEFAULT_OUTDIR),
    )
    stage = DeploymentStage.from_context(app.node.try_get_context(STAGE_CONTEXT_KEY))
    stateful = TetherStatefulStack(
        app,
        f"Tether-{stage}-data",
        stage=stage,
        description=f"Tether ({stage}) data: job state and message log tables, imports, secrets",
    )
    stack = TetherStack(
        app,
        f"Tether-{stage}",
        stage=stage,
        stateful=stateful,
        description=f"Tether ({stage}): APIs, job runner and delivery for mobile clients",
    )
    Tags.of(app).add("project", SERVICE_NAME)
    Tags.of(app).add("stage", stage.value)
    # cdk-nag 3 is a policy-validation plugin, not an Aspect: any unacknowledged AwsSolutions
    # finding fails `app.synth()` with a report. Acknowledge findings where they arise, with
    # `Validations.of(construct).acknowledge(Acknowledgment(id=..., reason=...))`.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return TetherApp(app=app, stateful=stateful, stack=stack)


def _cdk_json_context() -> dict[str, Any]:
    if not CDK_JSON.is_file():
        return {}
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise TypeError(f"{CDK_JSON}: 'context' must be an object")
    return context


def main() -> None:
    started = time.perf_counter()
    built = build_app()
    assembly = built.app.synth()
    elapsed = time.perf_counter() - started
    # What `make synth` shows: the size of each stack, how long synth took, and the asset
    # sizes Lambda's 250 MB unzipped limit applies to.
    for stack in built.stacks:
        template = assembly.get_stack_artifact(stack.artifact_id).template
        print(f"{stack.stack_name}: {len(template.get('Resources', {}))} resources")
    print(f"synth: {elapsed:.1f} s (app build, bundling, cdk-nag; not counting the jsii start)")
    sizes = built.stack.packaging.asset_sizes(assembly.directory)
    if not built.stack.packaging.bundled:
        print("assets: dependencies layer is a placeholder (tether:bundle=false), not deployable")
    for name, size in sizes.items():
        print(f"{name}: {size / 1_000_000:.1f} MB")
    console = sum(path.stat().st_size for path in static_files())
    print(f"web console: {console / 1_000:.0f} KB (copied by CDK's BucketDeployment at deploy)")


if __name__ == "__main__":
    main()
