"""The pinned CDK CLI (package.json, what `make deploy` runs) reads the app's cloud assembly.

aws-cdk-lib writes the assembly in a schema version the CLI must know; a CLI older than the
library refuses it ("this CDK CLI is not compatible with the CDK library"), which would only
show at `make deploy`. Here the CLI runs the app exactly as a deploy does (cdk.json's `app`)
and lists both stacks; the dependencies layer is not built (`tether:bundle=false`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra.cloud.packaging import BUNDLE_CONTEXT_KEY

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"


def test_the_pinned_cli_lists_both_stacks_of_the_app(tmp_path: Path) -> None:
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

    # When it lists the app's stacks (one stage is enough: the schema does not depend on it)
    context = ["-c", "stage=dev", "-c", f"{BUNDLE_CONTEXT_KEY}=false"]
    listed = subprocess.run(  # noqa: S603 - the pinned CLI, fixed arguments
        [str(CLI), "ls", *context, "--output", str(tmp_path / "cdk.out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then it read the assembly: both stacks, the data stack first (the app's own report
    # lines, "Tether-dev: N resources", are not stack names)
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = [line for line in listed.stdout.splitlines() if line.startswith("Tether-")]
    assert [name for name in names if " " not in name] == ["Tether-dev-data", "Tether-dev"]
