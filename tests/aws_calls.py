"""The AWS calls each Lambda function makes while the tests run, as IAM sees them.

moto enforces no IAM, so a grant missing from a function's role would first show in a deploy.
`install()` records, for every boto3 call made while one of Tether's Lambda entry points runs,
the IAM requests it amounts to (action, resource ARN, condition keys), attributed to that entry
point; tests/infra/test_iam_parity.py checks them against each function's role in the
synthesized template.

* Which function: `wrap_entry_points()` replaces each entry point of `functions/` (the handler
  string CDK deploys, e.g. `functions.runner.prepare`) by a wrapper that names it in a context
  variable for the length of the call. Callers look handlers up on their module when they call
  (the local stack builds its `LocalFunction`s at start, test helpers call `http_api.handler`),
  so one wrap covers the local stack, `tether replay` and the helpers that invoke handlers
  directly. Calls outside an entry point (fixtures, the local stack's own pollers) are not
  recorded: they are not a function's.
* Which call: a botocore `before-parameter-build` handler added to botocore's builtin handlers,
  as `infra.local.dynamo_rules` does (under moto a handler registered on a session sees nothing).
  It maps the operation to IAM's terms: a transaction to the action of each item on its table,
  `PostToConnection` to `execute-api:ManageConnections`, `CreateSchedule` to its implied
  `iam:PassRole` with `iam:PassedToService`, a task token to the state machine it belongs to.
* Canonical resources: names that differ per test (table prefixes, the moto account, execution
  and connection ids) are reduced to what a role's policy names (`table/jobs`,
  `execution:JobRunner:{id}`), so the calls deduplicate to a few per function.

The recorded set is committed (`tests/infra/aws_calls.json`, written by `make aws-calls`), and a
run that records a call missing from it fails at session end (`check_recorded`): the IAM test
reads a file, not a run's order or its xdist workers, and a new call cannot go unchecked.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

from botocore import handlers

from shared.tables import TABLES

# Every handler CDK deploys (tests/infra/test_iam_parity.py checks this list against the template).
ENTRY_POINTS: Final = (
    "functions.authorizer.handler",
    "functions.cleanup.handler",
    "functions.dispatcher.handler",
    "functions.http_api.handler",
    "functions.launcher.handler",
    "functions.runner.await_resume",
    "functions.runner.finalize",
    "functions.runner.notify",
    "functions.runner.prepare",
    "functions.runner.process",
    "functions.runner.record_failure",
    "functions.ws_handler.handler",
)
COMMITTED: Final = Path(__file__).resolve().parent / "infra" / "aws_calls.json"
REGION: Final = "us-east-1"
ACCOUNT: Final = "123456789012"
# Tether has one state machine; a task token belongs to one of its executions.
STATE_MACHINE: Final = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:JobRunner"
ID: Final = "{id}"

# (action, resource, sorted condition keys and values): one IAM request.
Request = tuple[str, str, tuple[tuple[str, str], ...]]
Calls = dict[str, set[Request]]

_running: ContextVar[str | None] = ContextVar("tether_entry_point", default=None)
_calls: Calls = {}
_lock = threading.Lock()
_installed: list[bool] = []


# -- recording ------------------------------------------------------------------------------


@contextmanager
def running(entry_point: str) -> Iterator[None]:
    """Attribute the calls made inside to `entry_point`."""
    token = _running.set(entry_point)
    try:
        yield
    finally:
        _running.reset(token)


def wrap_entry_points(entry_points: Iterable[str] = ENTRY_POINTS) -> None:
    """Replace each `module.function` by a wrapper that runs it as that entry point."""
    for entry_point in entry_points:
        module_name, name = entry_point.rsplit(".", 1)
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        if getattr(original, "__tether_entry_point__", None) == entry_point:
            continue
        setattr(module, name, _attributed(entry_point, original))


def _attributed(entry_point: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        with running(entry_point):
            return handler(*args, **kwargs)

    run.__tether_entry_point__ = entry_point  # type: ignore[attr-defined]
    return run


def install() -> None:
    """Record the calls of every boto3 client created from now on (see the module docstring)."""
    with _lock:
        if _installed:
            return
        handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _record))
        _installed.append(True)


def _record(params: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any) -> None:
    entry_point = _running.get()
    if entry_point is None:
        return
    service = model.service_model.signing_name
    region = context.get("client_region") or REGION
    requests = {canonical(r) for r in iam_requests(service, model.name, params, region)}
    with _lock:
        _calls.setdefault(entry_point, set()).update(requests)


def recorded() -> Calls:
    """What this process recorded so far, by entry point."""
    with _lock:
        return {name: set(requests) for name, requests in _calls.items()}


# -- operations as IAM requests -------------------------------------------------------------

_TRANSACT_ACTIONS: Final = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_SCHEDULE_ACTIONS: Final = {"CreateSchedule", "UpdateSchedule", "DeleteSchedule", "GetSchedule"}
_SNS_RESOURCE: Final = {
    "CreatePlatformEndpoint": "PlatformApplicationArn",
    "GetEndpointAttributes": "EndpointArn",
    "SetEndpointAttributes": "EndpointArn",
    "DeleteEndpoint": "EndpointArn",
}
_CONNECTION_METHODS: Final = {
    "PostToConnection": "POST",
    "GetConnection": "GET",
    "DeleteConnection": "DELETE",
}


def iam_requests(
    service: str, operation: str, params: Mapping[str, Any], region: str = REGION
) -> list[Request]:
    """The IAM requests one API call amounts to (`service` is its signing name)."""
    arn = f":{region}:{ACCOUNT}:"
    if service == "dynamodb":
        return _dynamodb(operation, params, f"arn:aws:dynamodb{arn}table/")
    if service == "states":
        resource = params.get("stateMachineArn") or params.get("executionArn") or STATE_MACHINE
        return [(f"states:{operation}", str(resource), ())]
    if service == "scheduler" and operation in _SCHEDULE_ACTIONS:
        group = params.get("GroupName", "default")
        schedule = (
            f"scheduler:{operation}",
            f"arn:aws:scheduler{arn}schedule/{group}/{params['Name']}",
            (),
        )
        role = params.get("Target", {}).get("RoleArn")
        if role is None:
            return [schedule]
        passed = (("iam:PassedToService", "scheduler.amazonaws.com"),)
        return [schedule, ("iam:PassRole", str(role), passed)]
    if service == "sns" and operation in _SNS_RESOURCE:
        return [(f"sns:{operation}", str(params[_SNS_RESOURCE[operation]]), ())]
    if service == "sns" and operation == "Publish":
        return [("sns:Publish", str(params.get("TargetArn") or params.get("TopicArn")), ())]
    if service == "secretsmanager":
        secret = str(params["SecretId"])
        if not secret.startswith("arn:"):
            secret = f"arn:aws:secretsmanager{arn}secret:{secret}"
        return [(f"secretsmanager:{operation}", secret, ())]
    if service == "s3" and "Key" in params:
        action = "s3:GetObject" if operation in {"GetObject", "HeadObject"} else f"s3:{operation}"
        return [(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", ())]
    if service == "execute-api" and operation in _CONNECTION_METHODS:
        method = _CONNECTION_METHODS[operation]
        resource = f"arn:aws:execute-api{arn}<api>/<stage>/{method}/@connections/{ID}"
        return [("execute-api:ManageConnections", resource, ())]
    return [(f"{service}:{operation}", "*", ())]


def _dynamodb(operation: str, params: Mapping[str, Any], tables: str) -> list[Request]:
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        return [
            (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", tables + str(body["TableName"]), ())
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation in {"BatchWriteItem", "BatchGetItem"}:
        return [(f"dynamodb:{operation}", tables + name, ()) for name in params["RequestItems"]]
    if "StreamArn" in params:
        return [(f"dynamodb:{operation}", str(params["StreamArn"]), ())]
    resource = tables + str(params.get("TableName", "*"))
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", resource, ())]


# -- canonical resources --------------------------------------------------------------------

_ARN: Final = re.compile(r"^arn:[^:]*:(?P<service>[^:]*):[^:]*:[^:]*:(?P<resource>.*)$")
_TABLE_KEYS: Final = tuple(spec.key for spec in TABLES)
_SECRET_SUFFIX: Final = re.compile(r"-[A-Za-z0-9]{6}$")  # what Secrets Manager appends to a name


def canonical(request: Request) -> Request:
    action, resource, conditions = request
    return action, canonical_arn(resource), conditions


@functools.lru_cache(maxsize=4096)  # ids repeat little, names a lot: keep it cheap per call
def canonical_arn(arn: str) -> str:
    """`arn` with this test's names replaced by the role each resource plays in Tether."""
    match = _ARN.match(arn)
    if match is None:
        return arn
    service, resource = match["service"], match["resource"]
    rename = _RENAMES.get(service)
    named = rename(resource) if rename is not None else resource
    account = "" if service in {"s3", "iam"} else ACCOUNT
    region = "" if service in {"s3", "iam"} else REGION
    return f"arn:aws:{service}:{region}:{account}:{named}"


def _table(resource: str) -> str:
    kind, _, rest = resource.partition("/")
    name, slash, tail = rest.partition("/")
    key = next((k for k in _TABLE_KEYS if name == k or name.endswith(f"-{k}")), name)
    if tail.startswith("stream/"):
        tail = "stream/" + ID
    return f"{kind}/{key}{slash}{tail}"


def _secret(resource: str) -> str:
    name = _SECRET_SUFFIX.sub("", resource.removeprefix("secret:"))
    role = next((r for r in ("resume", "cursor") if r in name.lower()), name)
    return f"secret:{role}"


def _states(resource: str) -> str:
    kind, _, rest = resource.partition(":")
    if kind == "execution":
        return f"execution:JobRunner:{ID}" if rest else "execution:JobRunner"
    return f"{kind}:JobRunner"


def _schedule(resource: str) -> str:
    kind, _, rest = resource.partition("/")
    return f"{kind}/schedules/{ID}" if kind == "schedule" and rest else resource


def _role(resource: str) -> str:
    return "role/scheduler" if resource.startswith("role/") else resource


def _bucket(resource: str) -> str:
    """Tether reads one bucket: its name, and the key's first folder (`imports/`), kept."""
    _name, slash, key = resource.partition("/")
    prefix, inner, _ = key.partition("/")
    return f"import-bucket{slash}{prefix}{inner}{ID if inner else ''}"


def _sns(resource: str) -> str:
    parts = resource.split("/")
    if parts[0] == "app" and len(parts) == 3:
        return f"app/{parts[1]}/app"
    if parts[0] == "endpoint" and len(parts) >= 3:
        return f"endpoint/{parts[1]}/app/{ID}"
    return resource


def _execute_api(resource: str) -> str:
    parts = resource.split("/")
    return "/".join(["<api>", "<stage>", *parts[2:]]) if len(parts) > 2 else resource


_RENAMES: Final[Mapping[str, Callable[[str], str]]] = {
    "dynamodb": _table,
    "secretsmanager": _secret,
    "states": _states,
    "scheduler": _schedule,
    "iam": _role,
    "s3": _bucket,
    "sns": _sns,
    "execute-api": _execute_api,
}


# -- the committed set ----------------------------------------------------------------------


def dump(calls: Mapping[str, Iterable[Request]]) -> str:
    """The calls as the committed file spells them: sorted, one request per line."""
    rows = {
        name: sorted(
            [action, resource, dict(conditions)] for action, resource, conditions in calls[name]
        )
        for name in sorted(calls)
    }
    body = ",\n".join(
        f"  {json.dumps(name)}: [\n"
        + ",\n".join(f"    {json.dumps(row)}" for row in rows[name])
        + "\n  ]"
        for name in rows
    )
    return "{\n" + body + "\n}\n"


def load(text: str) -> Calls:
    return {
        name: {
            (action, resource, tuple(sorted(conditions.items())))
            for action, resource, conditions in rows
        }
        for name, rows in json.loads(text).items()
    }


def merge(parts: Iterable[Calls]) -> Calls:
    merged: Calls = {}
    for part in parts:
        for name, requests in part.items():
            merged.setdefault(name, set()).update(requests)
    return merged


def unknown(calls: Calls, committed: Calls) -> Calls:
    """What `calls` has that `committed` has not."""
    return {
        name: requests - committed.get(name, set())
        for name, requests in calls.items()
        if requests - committed.get(name, set())
    }
