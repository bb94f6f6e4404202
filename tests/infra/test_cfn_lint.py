"""cfn-lint on every synthesized template of both stages: no error, no warning, no info.

The one rule a template opts out of (W3005, a `DependsOn` that repeats a `GetAtt`) is ignored
per resource in the template's own metadata (`infra.cloud.lambda_function.
ignore_redundant_role_dependency`, which says why), never for the whole run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cfnlint.api import ManualArgs, lint_file

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

# The regions a deploy is most likely to target; cfn-lint checks resource availability per region.
REGIONS = ["us-east-1", "eu-west-1"]


def _templates(outdir: Path) -> list[Path]:
    return sorted(outdir.glob("*.template.json"))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_template_passes_cfn_lint(
    stage: str, dev_stack: SynthesizedStack, prod_stack: SynthesizedStack
) -> None:
    # Given a stage's synthesized templates (fixture): the stateful and the stateless stack
    stack = dev_stack if stage == "dev" else prod_stack
    templates = _templates(stack.outdir)
    assert [t.name for t in templates] == [
        f"Tether-{stage}-data.template.json",
        f"Tether-{stage}.template.json",
    ]

    # When cfn-lint checks each of them with every rule it has
    findings = [
        f"{template.name}: {match}"
        for template in templates
        for match in lint_file(template, ManualArgs(regions=REGIONS))
    ]

    # Then it finds nothing at all
    assert findings == []


def test_cfn_lint_reports_a_broken_template(tmp_path: Path) -> None:
    # Given a template with an error cfn-lint knows (an unknown property)
    template = tmp_path / "broken.template.json"
    template.write_text(
        '{"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}}'
    )

    # When linted as the templates above are
    findings = lint_file(template, ManualArgs(regions=REGIONS))

    # Then the finding is reported, so the empty lists above mean something
    assert [match.rule.id for match in findings] == ["E3002"]
