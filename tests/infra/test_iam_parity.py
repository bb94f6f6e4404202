"""IAM parity: every AWS call a Lambda function makes in the tests is allowed by its role.

The calls are the ones the integration, e2e and browser suites recorded per entry point
(tests/aws_calls.py; committed as tests/infra/aws_calls.json, and a run that makes a call
missing from it fails). Here each is checked against the role of the function that runs that
handler in the synthesized template, as IAM would evaluate it: actions and resources with
wildcards, CloudFormation's `Ref`/`Fn::GetAtt`/`Fn::Join` resolved to the resources they name,
conditions against the call's condition keys. The other way round, a grant no recorded call
uses is either removed from the CDK app or listed in `UNEXERCISED` with its reason.

The template is the one with every push platform configured (`push_stack`), so the SNS grants
exist; the stage does not change any function's policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pytest

from tests import aws_calls
from tests.aws_calls import Calls, Request
from tests.infra.conftest import SynthesizedStack
from tests.infra.policies import Roles, Statement, like

# Grants no recorded call uses, each with why it stays: (entry point, action, resource) with
# `*` wildcards, matched against the statement's action and canonical resource.
# The first key that matches a grant gives its reason.
_DISPATCHER: Final = "functions.dispatcher.handler"
UNEXERCISED: Final[Mapping[tuple[str, str, str], str]] = {
    # Used by Lambda itself, with the function's role, never by the handler's code.
    ("*", "logs:*", "arn:aws:logs:*"): "The Lambda runtime writes the function's own log "
    "group (CreateLogStream, PutLogEvents); the handler never calls CloudWatch Logs.",
    ("*", "xray:*", "*"): "Active tracing: Lambda sends the function's trace segments; X-Ray "
    "supports no resource-level permissions.",
    (_DISPATCHER, "dynamodb:ListStreams", "*"): "The stream event source mapping reads the "
    "messages table's stream with the function's role (the tests' poller is not a function).",
    (_DISPATCHER, "dynamodb:*", "*:table/messages/stream/*"): "The stream event source "
    "mapping reads the messages table's stream with the function's role.",
    (_DISPATCHER, "sqs:*", "*:WebSocketApiDispatcherFailures*"): "The event source mapping's "
    "on-failure destination: Lambda sends a batch it gave up on with the function's role.",
    ("functions.launcher.handler", "sqs:SendMessage", "*:SchedulesLaunchFailures*"): "The "
    "launcher's dead-letter queue: Lambda sends an asynchronous invocation it gave up on with "
    "the function's role.",
    # Granted as a unit on purpose.
    ("*", "dynamodb:*", "arn:aws:dynamodb:*:table/*"): "A function's table access is granted "
    "as the table's whole item-level read/write set (CDK's grant_read_write_data, or the "
    "JobRunner's TABLE_ACTIONS and NOTIFY_TABLE_ACTIONS) on the tables it needs and no other; "
    "the subset it calls is recorded in aws_calls.json and checked above.",
    # Real paths the suites do not reach yet.
    ("functions.ws_handler.handler", "states:SendTaskSuccess", "*:stateMachine:JobRunner"): "A "
    "cancel over WebSocket of a paused job releases its parked AwaitResume token "
    "(JobRunner.cancel); the WebSocket tests run without a state machine.",
    ("functions.runner.await_resume", "states:SendTaskSuccess", "*:stateMachine:JobRunner"): ""
    "AwaitResume releases the token itself when the pause was lifted before the token was "
    "parked (a race no test drives).",
}


@pytest.fixture(scope="module")
def roles(push_stack: SynthesizedStack) -> Roles:
    return Roles(push_stack)


@pytest.fixture(scope="module")
def recorded() -> Calls:
    return aws_calls.load(aws_calls.COMMITTED.read_text())


# -- the checks -------------------------------------------------------------------------------


def test_the_recorded_entry_points_are_the_deployed_handlers(roles: Roles) -> None:
    assert sorted(roles.functions()) == sorted(aws_calls.ENTRY_POINTS)


def test_every_function_made_calls_in_the_tests(recorded: Calls) -> None:
    """An entry point with nothing recorded would pass the next test vacuously."""
    assert {name for name, calls in recorded.items() if calls} == set(aws_calls.ENTRY_POINTS)


def test_every_recorded_call_is_allowed_by_its_function_role(roles: Roles, recorded: Calls) -> None:
    functions = roles.functions()
    denied = {}
    for handler, requests in recorded.items():
        statements = roles.statements(functions[handler])
        denied[handler] = sorted(r for r in requests if not any(s.allows(r) for s in statements))
    assert {handler: calls for handler, calls in denied.items() if calls} == {}


def _unexercised(roles: Roles, recorded: Calls) -> set[tuple[str, str, str]]:
    unused = set()
    for handler, role in roles.functions().items():
        calls = recorded.get(handler, set())
        for statement in roles.statements(role):
            for action, resource in statement.grants():
                one = Statement((action,), (resource,), statement.conditions)
                if not any(one.allows(call) for call in calls):
                    unused.add((handler, action, resource))
    return unused


def _justification(grant: tuple[str, str, str]) -> str | None:
    return next(
        (
            reason
            for key, reason in UNEXERCISED.items()
            if all(like(pattern, part) for pattern, part in zip(key, grant, strict=True))
        ),
        None,
    )


def test_every_grant_is_exercised_or_justified(roles: Roles, recorded: Calls) -> None:
    unjustified = sorted(g for g in _unexercised(roles, recorded) if _justification(g) is None)
    assert unjustified == []


def test_every_justification_covers_an_unexercised_grant(roles: Roles, recorded: Calls) -> None:
    unused = _unexercised(roles, recorded)
    stale = [
        key
        for key in UNEXERCISED
        if not any(
            all(like(p, part) for p, part in zip(key, grant, strict=True)) for grant in unused
        )
    ]
    assert stale == []


# -- the matcher itself -------------------------------------------------------------------------


SCHEDULER_ROLE: Final = "arn:aws:iam:::role/scheduler"
PASS_ROLE: Final = Statement(
    actions=("iam:PassRole",),
    resources=(SCHEDULER_ROLE,),
    conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
)
TO_SCHEDULER: Final = (("iam:PassedToService", "scheduler.amazonaws.com"),)


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (("iam:PassRole", SCHEDULER_ROLE, TO_SCHEDULER), True),
        (
            ("iam:PassRole", SCHEDULER_ROLE, (("iam:PassedToService", "lambda.amazonaws.com"),)),
            False,
        ),
        (("iam:PassRole", SCHEDULER_ROLE, ()), False),
        (("IAM:passrole", SCHEDULER_ROLE, TO_SCHEDULER), True),
    ],
)
def test_a_condition_is_evaluated_against_the_call(request_: Request, allowed: bool) -> None:
    assert PASS_ROLE.allows(request_) is allowed


def test_wildcards_match_as_iam_does() -> None:
    index = Statement(("dynamodb:Get*",), ("arn:aws:dynamodb:r:a:table/jobs/index/*",), {})
    assert index.allows(("dynamodb:GetItem", "arn:aws:dynamodb:r:a:table/jobs/index/byStatus", ()))
    assert not index.allows(("dynamodb:GetItem", "arn:aws:dynamodb:r:a:table/jobs", ()))
    assert not index.allows(("dynamodb:PutItem", "arn:aws:dynamodb:r:a:table/jobs/index/x", ()))
