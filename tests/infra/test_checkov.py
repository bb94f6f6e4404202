"""checkov on every synthesized template of both stages: every finding fixed or acknowledged.

checkov runs from its own pinned environment (`.tools/checkov`, made by `make install` from
tests/infra/checkov-requirements.txt), never the project's venv, with `--skip-download` so it
asks no server for anything. Its acknowledgements live in each resource's `Metadata.checkov`,
written by `infra.cloud.checkov.acknowledge_checkov` beside the cdk-nag ones, each with a reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
BROKEN = "broken.template.json"


def _checkov(templates: list[Path]) -> list[dict[str, Any]]:
    """checkov's JSON report, one entry per file it checked (failed and skipped checks)."""
    assert CHECKOV.exists(), "checkov is not installed: run `make install`"
    files = [argument for path in templates for argument in ("-f", str(path))]
    run = subprocess.run(  # noqa: S603 - the pinned checkov, our own templates
        [str(CHECKOV), *files, "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]  # 1: some check failed
    report = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    return [result for r in reports for result in _checks(r)]


def _checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    results = report["results"]
    return [
        {
            "state": state,
            "file": Path(check["file_path"]).name,
            "check": check["check_id"],
            "resource": check["resource"],
            "reason": check.get("check_result", {}).get("suppress_comment", ""),
        }
        for state in ("failed_checks", "skipped_checks")
        for check in results.get(state, [])
    ]


def test_checkov_finds_nothing_unacknowledged_in_either_stage(
    dev_stack: SynthesizedStack, prod_stack: SynthesizedStack, tmp_path: Path
) -> None:
    # Given both stages' templates (the fixtures' synth), and a template with a finding no
    # one acknowledged (an unencrypted queue), so that a clean report means checkov looked
    templates = sorted([*dev_stack.outdir.glob("*.template.json")])
    templates += sorted(prod_stack.outdir.glob("*.template.json"))
    assert len(templates) == 4
    broken = tmp_path / BROKEN
    broken.write_text('{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}')

    # When checkov checks them all in one run
    checks = _checkov([*templates, broken])

    # Then the only failure is the planted one; everything else it raised is acknowledged,
    # each with a reason of its own
    failed = [(c["file"], c["check"]) for c in checks if c["state"] == "failed_checks"]
    assert failed == [(BROKEN, "CKV_AWS_27")]
    skipped = [c for c in checks if c["state"] == "skipped_checks"]
    assert len(skipped) == 172  # 86 per stage, each with its reason in the metadata
    assert [c for c in skipped if len(c["reason"]) < 40] == []
