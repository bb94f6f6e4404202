"""Environment parity: every setting a handler needs is set on its function by CDK.

Each function's environment is read from the synthesized template, CloudFormation values
rendered as what they resolve to (a table's name, a secret's ARN, the @connections URL), and
loaded into the pydantic-settings models its handler loads at cold start, exactly as Lambda
would: a required variable missing, or a value of the wrong shape, fails the model. Settings a
model leaves optional (a table name defaulting to "", an ARN to None, because another function
does without them) are listed per handler in `NEEDS` and must be set as well.

Where each function's environment comes from is checked too: only the construct that builds a
function sets its environment (no `add_environment` anywhere in the CDK app).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from pydantic_settings import BaseSettings

from shared import constants as c
from shared.auth_settings import AuthSettings
from shared.delivery_wiring import DeliverySettings
from shared.settings import TetherSettings
from tests.infra.conftest import SynthesizedStack
from tests.infra.policies import Roles

Models = tuple[type[BaseSettings], ...]
_RUNNER: Final = frozenset(
    {
        c.ENV_CURSOR_SECRET_ARN,
        c.ENV_STATE_MACHINE_ARN,
        c.ENV_BATCH_SIZE,
        c.ENV_BATCHES_PER_EXECUTION,
    }
)
# Handler → the settings models its cold start loads, and the variables it needs beyond what
# those models require (each model's own required fields and validators are checked anyway).
NEEDS: Final[Mapping[str, tuple[Models, frozenset[str]]]] = {
    "functions.authorizer.handler": (
        (AuthSettings,),
        frozenset(
            {
                c.ENV_AUTH_JWKS_URL,
                c.ENV_AUTH_ISSUER,
                c.ENV_AUTH_AUDIENCE,
                c.ENV_AUTH_TENANT_CLAIM,
                c.ENV_RESUME_SIGNING_KEY_SECRET_ARN,
            }
        ),
    ),
    "functions.http_api.handler": (
        (TetherSettings, AuthSettings),
        frozenset(
            {
                c.ENV_AUTH_JWKS_URL,
                c.ENV_AUTH_ISSUER,
                c.ENV_AUTH_AUDIENCE,
                c.ENV_AUTH_TENANT_CLAIM,
                c.ENV_RESUME_SIGNING_KEY_SECRET_ARN,
                c.ENV_CURSOR_SECRET_ARN,
                c.ENV_IDEMPOTENCY_TABLE,
                c.ENV_LIMITS_TABLE,
                c.ENV_SCHEDULES_TABLE,
                c.ENV_DEVICES_TABLE,
                c.ENV_CONNECTIONS_TABLE,
                c.ENV_STATE_MACHINE_ARN,
                c.ENV_IMPORT_BUCKET,
                c.ENV_SCHEDULER_GROUP,
                c.ENV_SCHEDULER_ROLE_ARN,
                c.ENV_LAUNCHER_ARN,
                c.ENV_SCHEDULER_DLQ_ARN,
                c.ENV_MAX_RUNNING_PER_TENANT,
            }
        ),
    ),
    "functions.ws_handler.handler": (
        (TetherSettings,),
        frozenset(
            {
                c.ENV_CONNECTIONS_TABLE,
                c.ENV_CURSOR_SECRET_ARN,
                c.ENV_WEBSOCKET_MANAGEMENT_URL,
                c.ENV_STATE_MACHINE_ARN,
            }
        ),
    ),
    "functions.dispatcher.handler": (
        (DeliverySettings,),
        # The messages table: records of any other table are ignored, not delivered.
        frozenset({c.ENV_MESSAGES_TABLE}),
    ),
    "functions.launcher.handler": (
        (TetherSettings,),
        frozenset(
            {
                c.ENV_SCHEDULES_TABLE,
                c.ENV_LIMITS_TABLE,
                c.ENV_CURSOR_SECRET_ARN,
                c.ENV_STATE_MACHINE_ARN,
                c.ENV_IMPORT_BUCKET,
                c.ENV_MAX_RUNNING_PER_TENANT,
            }
        ),
    ),
    "functions.cleanup.handler": (
        (TetherSettings,),
        frozenset(
            {
                c.ENV_CONNECTIONS_TABLE,
                c.ENV_DEVICES_TABLE,
                c.ENV_LIMITS_TABLE,
                c.ENV_CURSOR_SECRET_ARN,
                c.ENV_STATE_MACHINE_ARN,
                c.ENV_MAX_RUNNING_PER_TENANT,
            }
        ),
    ),
    "functions.runner.prepare": ((TetherSettings,), _RUNNER),
    "functions.runner.process": ((TetherSettings,), _RUNNER),
    "functions.runner.record_failure": ((TetherSettings,), _RUNNER),
    "functions.runner.await_resume": ((TetherSettings,), _RUNNER),
    # Finalize gives back the job's run slot under the shared cap, and hands the grace period
    # to the PushGrace wait; Notify reads the owner's delivery cursors and devices.
    "functions.runner.finalize": (
        (TetherSettings,),
        _RUNNER | {c.ENV_LIMITS_TABLE, c.ENV_MAX_RUNNING_PER_TENANT, c.ENV_PUSH_GRACE_SECONDS},
    ),
    "functions.runner.notify": (
        (TetherSettings,),
        _RUNNER | {c.ENV_CONNECTIONS_TABLE, c.ENV_DEVICES_TABLE},
    ),
}
_NAMED_BY_REF: Final = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Scheduler::ScheduleGroup"}
CDK_APP: Final = Path(__file__).resolve().parents[2] / "infra" / "cloud"


def environments(stack: SynthesizedStack) -> dict[str, dict[str, str]]:
    """Handler → its function's environment, every value rendered as CloudFormation resolves it."""
    roles = Roles(stack)

    def render(value: Any) -> str:
        named = isinstance(value, dict) and value.get("Ref") in roles.resources
        if named and roles.resources[value["Ref"]]["Type"] in _NAMED_BY_REF:
            return str(value["Ref"])  # a name: the logical id stands in for it
        return roles.render(value)

    return {
        function["Properties"]["Handler"]: {
            name: render(value)
            for name, value in function["Properties"]
            .get("Environment", {})
            .get("Variables", {})
            .items()
        }
        for function in stack.tether_functions().values()
    }


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_every_function_gets_the_settings_its_handler_needs(
    stack_name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack: SynthesizedStack = request.getfixturevalue(stack_name)
    found = environments(stack)
    assert sorted(found) == sorted(NEEDS)
    for handler, environment in found.items():
        models, needed = NEEDS[handler]
        assert sorted(needed - set(environment)) == [], handler
        # As Lambda starts it: this environment and nothing else of Tether's.
        for name in list(os.environ):
            if name.startswith(("TETHER_", "POWERTOOLS_")) or name == c.ENV_AWS_ENDPOINT_URL:
                monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        for model in models:
            model()  # raises if a required setting is missing or malformed


def test_a_missing_setting_fails_the_check(
    dev_stack: SynthesizedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above is not vacuous: without its messages table the handler's model fails."""
    environment = environments(dev_stack)["functions.runner.prepare"]
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        if name != c.ENV_MESSAGES_TABLE:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=c.ENV_MESSAGES_TABLE):
        TetherSettings()


def test_only_its_own_construct_sets_a_function_environment() -> None:
    """A construct that adds to another's function environment splits it over two places."""
    adders = sorted(
        str(path.relative_to(CDK_APP))
        for path in CDK_APP.glob("*.py")
        if ".add_environment(" in path.read_text()
    )
    assert adders == []
