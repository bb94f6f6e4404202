"""The web console's JobTracker (JavaScript) under node's test runner.

The rules live in `tests/unit/console_tracker.test.mjs`; this runs it so `make test` covers
them. Node is already a requirement (the CDK library runs on it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SPEC = Path(__file__).with_name("console_tracker.test.mjs")


def test_the_console_tracker_keeps_the_recovery_rules() -> None:
    # Given node and the tracker's spec
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required (README: Python 3.11 and Node 20)")
    # When node's test runner runs it
    run = subprocess.run(  # noqa: S603 (a fixed command)
        [node, "--test", str(SPEC)], capture_output=True, text=True, timeout=60, check=False
    )
    # Then every case passes
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout
