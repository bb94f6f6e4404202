"""A synthesized app's Lambda functions as IAM sees them: handler, role, resolved statements.

Shared by the IAM parity test (calls against roles) and the environment parity test (each
function's environment, its CloudFormation values rendered the same way).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tests import aws_calls
from tests.aws_calls import ACCOUNT, REGION, Request
from tests.infra.conftest import SynthesizedStack


@dataclass(frozen=True, slots=True)
class Statement:
    """One `Allow` statement of a role's policy, its resources resolved and canonical."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]

    def allows(self, request: Request) -> bool:
        action, resource, context = request
        return (
            any(like(pattern, action, ignore_case=True) for pattern in self.actions)
            and any(like(pattern, resource) for pattern in self.resources)
            and _conditions_hold(self.conditions, dict(context))
        )

    def grants(self) -> Iterator[tuple[str, str]]:
        for action in self.actions:
            for resource in self.resources:
                yield action, resource


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` any one."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: dict[str, str]) -> bool:
    """Every condition of a statement, as IAM evaluates it against the request's keys; an
    operator this test does not know fails closed."""
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in values:
                return False
            if operator in {"StringLike", "ArnLike"} and not any(like(v, actual) for v in values):
                return False
            if operator not in {"StringEquals", "StringLike", "ArnLike"}:
                return False
    return True


# -- the template -----------------------------------------------------------------------------

_PSEUDO: Final = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


class Roles:
    """The functions of a synthesized app, their handlers and their roles' statements."""

    def __init__(self, stack: SynthesizedStack) -> None:
        self.stack = stack
        self.resources: dict[str, Any] = stack.template.to_json()["Resources"]
        self._policies = [
            policy["Properties"] for policy in stack.resources("AWS::IAM::Policy").values()
        ]
        self.tables = {
            stack.logical_id_of_construct(table): key
            for key, table in stack.built.stateful.storage.tables.items()
        }

    def functions(self) -> dict[str, str]:
        """Handler → the logical id of its role."""
        roles: dict[str, str] = {}
        for function in self.stack.tether_functions().values():
            properties = function["Properties"]
            role = properties["Role"]["Fn::GetAtt"][0]
            assert properties["Handler"] not in roles, properties["Handler"]
            roles[properties["Handler"]] = role
        return roles

    def statements(self, role: str) -> list[Statement]:
        documents = [
            policy["PolicyDocument"]
            for policy in self._policies
            if {"Ref": role} in policy["Roles"]
        ]
        properties = self.resources[role]["Properties"]
        assert not properties.get("ManagedPolicyArns"), role
        documents += [inline["PolicyDocument"] for inline in properties.get("Policies", [])]
        statements = []
        for document in documents:
            for statement in document["Statement"]:
                assert statement["Effect"] == "Allow", statement
                assert "NotAction" not in statement, statement
                assert "NotResource" not in statement, statement
                statements.append(
                    Statement(
                        actions=tuple(as_list(statement["Action"])),
                        resources=tuple(
                            aws_calls.canonical_arn(self.render(r))
                            for r in as_list(statement["Resource"])
                        ),
                        conditions=statement.get("Condition", {}),
                    )
                )
        return statements

    def render(self, value: Any) -> str:
        """A policy resource as the ARN it names (a resource's ARN in canonical form)."""
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self.render(part) for part in parts)
        if "Ref" in value:
            name = value["Ref"]
            return _PSEUDO.get(name) or self._arn(name, "Ref")
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            return self._arn(name, attribute)
        raise AssertionError(f"a policy resource this test cannot resolve: {value}")

    def _arn(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        at = f"{REGION}:{ACCOUNT}"
        if kind == "AWS::DynamoDB::Table":
            table = f"arn:aws:dynamodb:{at}:table/{self.tables[logical_id]}"
            return table + "/stream/*" if attribute == "StreamArn" else table
        arns = {
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{at}:secret:{logical_id}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{logical_id}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{at}:log-group:{logical_id}:*",
            "AWS::ApiGatewayV2::Api": "<api>",
            "AWS::StepFunctions::StateMachine": aws_calls.STATE_MACHINE,
            "AWS::Lambda::Function": f"arn:aws:lambda:{at}:function:{logical_id}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{at}:{logical_id}",
        }
        return arns.get(kind, f"<{logical_id}.{attribute}>")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
