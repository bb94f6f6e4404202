"""The pinned CDK CLI (package.json, what `make deploy` runs) reads the app's cloud assembly.

aws-cdk-lib writes the assembly in a schema version the CLI must know; a CLI older than the
library refuses it ("this CDK CLI is not compatible with the CDK library"), which would only
show at `make deploy`. Here the CLI lists both stacks of the assembly the `dev_stack` fixture
synthesized: the app `build_app` builds, as cdk.json's `app` (`python -m infra.app`) does, so
the CLI need not run a second synth of its own; the dependencies layer is not built
(`tether:bundle=false`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra import app

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"


def test_the_pinned_cli_lists_both_stacks_of_the_app(dev_stack: SynthesizedStack) -> None:
    # Given the CLI that package.json pins
    if not CLI.exists():
        reason = "the pinned CDK CLI is not installed: run `make install`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    version = subprocess.run(  # noqa: S603 - the pinned CLI, fixed arguments
        [str(CLI), "--version"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith(pinned), version

    # and cdk.json running the module whose `main` synthesizes what `build_app` builds
    assert json.loads((ROOT / "cdk.json").read_text())["app"].endswith(f"-m {app.__name__}")

    # When it lists the stacks of the app's assembly (one stage is enough: the schema does not
    # depend on it)
    listed = subprocess.run(  # noqa: S603 - the pinned CLI, fixed arguments
        [str(CLI), "ls", "--app", str(dev_stack.outdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then it read the assembly: both stacks, the data stack first
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stdout.split() == ["Tether-dev-data", "Tether-dev"]


def test_the_cdk_steps_run_on_the_pinned_supported_node(dev_stack: SynthesizedStack) -> None:
    # Given the Node package.json pins (an LTS jsii supports; the machine's may be past its end
    # of life), after the fixture's synth started aws-cdk-lib's jsii kernel
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]
    assert dev_stack.outdir.exists()

    # When the kernel's node (JSII_NODE) and the node `npx cdk` runs under tell their version
    kernel_node = os.environ["JSII_NODE"]
    kernel = subprocess.run(  # noqa: S603 - the pinned node, fixed arguments
        [kernel_node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cli = subprocess.run(
        ["npx", "--no-install", "node", "--version"],  # noqa: S607 - npm's own launcher
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    # Then both are the pinned one, from node_modules
    assert Path(kernel_node) == ROOT / "node_modules" / ".bin" / "node"
    assert (kernel, cli) == (f"v{pinned}", f"v{pinned}")
