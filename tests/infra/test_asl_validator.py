"""asl-validator (npm, pinned in package.json) on the JobRunner definition.

The definition is the one `shared.runner.definition` builds for both CDK and the local stack;
a second opinion on it from a validator of the Amazon States Language that is not moto's
interpreter (which runs what it can) nor CDK (which passes the JSON through unread).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from shared.runner.definition import TASK_STEPS, job_runner_definition

ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def _validate(*definitions: Path) -> subprocess.CompletedProcess[str]:
    paths = [argument for path in definitions for argument in ("--json-path", str(path))]
    assert ASL_VALIDATOR.exists(), "asl-validator is not installed: run `make install`"
    return subprocess.run(  # noqa: S603 - the pinned validator, our own files
        [str(ASL_VALIDATOR), *paths], capture_output=True, text=True, timeout=120, check=False
    )


def _definition() -> dict[str, Any]:
    arns = {
        step: f"arn:aws:lambda:us-east-1:123456789012:function:tether-{step}" for step in TASK_STEPS
    }
    return job_runner_definition(arns)


def test_the_job_runner_definition_is_valid_asl_and_a_broken_one_is_not(tmp_path: Path) -> None:
    # Given the JobRunner definition rendered to JSON, and a copy whose Prepare task goes to a
    # state that does not exist (so a pass means the validator read the document)
    valid = tmp_path / "job_runner.asl.json"
    valid.write_text(json.dumps(_definition(), indent=2))
    broken_definition = _definition()
    broken_definition["States"][broken_definition["StartAt"]]["Next"] = "Nowhere"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(broken_definition))

    # When asl-validator checks both (one node process; it reports each file on its own line)
    checked = _validate(valid, broken)
    report = checked.stdout + checked.stderr

    # Then the real one is valid, and the broken one is refused naming the missing state
    assert f'"{valid}" is valid' in report
    assert f'"{valid}" is invalid' not in report
    assert f'"{broken}" is invalid' in report
    assert "MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nowhere" in report
    assert checked.returncode == 1  # for the broken one only, as the lines above show


def test_the_validator_is_the_pinned_one() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["asl-validator"]
    installed = json.loads((ROOT / "node_modules" / "asl-validator" / "package.json").read_text())
    assert installed["version"] == pinned
