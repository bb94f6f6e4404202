"""mypy analyses only the aws-cdk-lib modules pyproject.toml lists (the rest are skipped, their
types Any, to keep a cold type check short): a CDK module the code starts importing must be
added there, or its calls would go unchecked without a word."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.unit.test_docs import tracked_files

ROOT = Path(__file__).resolve().parents[2]


def _analysed() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        module
        for override in config["tool"]["mypy"]["overrides"]
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }


def _cdk_modules(tree: ast.AST) -> set[str]:
    """The aws_cdk modules a file imports (`from aws_cdk import aws_iam` names a module; a
    capitalised name such as `Stack` is a class of the root module)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("aws_cdk")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_cdk"):
            module = node.module or ""
            found.add(module)
            if module == "aws_cdk":
                found |= {f"aws_cdk.{a.name}" for a in node.names if a.name[0].islower()}
    return found


def _imported() -> set[str]:
    found: set[str] = set()
    for name in tracked_files(ROOT):
        if name.endswith(".py"):
            found |= _cdk_modules(ast.parse((ROOT / name).read_text()))
    return found


def test_every_cdk_module_the_code_imports_is_type_checked() -> None:
    imported = _imported()
    assert {"aws_cdk", "aws_cdk.aws_lambda", "aws_cdk.assertions"} <= imported  # it finds them
    assert imported - _analysed() == set()


def test_a_module_missing_from_the_list_is_found() -> None:
    tree = ast.parse("from aws_cdk import (\n    Stack,\n    aws_ec2 as ec2,\n)\n")
    assert _cdk_modules(tree) - _analysed() == {"aws_cdk.aws_ec2"}
