"""The HTTP API against its own OpenAPI document: schemathesis on the local stack, real sockets.

Schemathesis reads `GET /openapi.json` from `tether dev`'s stack and, for every operation,
sends the document's own examples, its boundary cases (every undeclared method, every missing
or malformed parameter) and a few generated requests, valid and invalid, as a user with every
scope; then the stateful phase follows the document's links (POST /jobs → that job's state,
log, cancel, pause, resume, delete; POST /schedules → that schedule's routes). Every built-in
check runs on every answer: no 5xx, only declared statuses, content types, headers and bodies
that match the document, invalid requests refused, valid ones accepted, auth not ignored, a
deleted resource gone. Bounded and reproducible: a fixed seed, derandomized, a few examples
per operation.

The few answers a check cannot foresee by construction are in `_REFUSED_BY_DESIGN`, each with
its reason; everything else must pass as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlencode

import pytest
import schemathesis
import schemathesis.engine
from schemathesis import Case, GenerationMode, HookContext
from schemathesis.engine import events
from schemathesis.engine.statistic import Statistic
from schemathesis.generation.meta import TestPhase
from schemathesis.schemas import BaseSchema

from infra.local.stack import LocalStack
from shared import constants as c
from shared.api.openapi import BEARER
from tests.e2e.stacks import running_stack
from tests.e2e.wire import mint

SEED: Final = 17
EXAMPLES_PER_OPERATION: Final = 2
STATEFUL_SCENARIOS: Final = 4
STATEFUL_STEPS: Final = 6
_JOB_ROUTES: Final = tuple(f"{method} /jobs/{{job_id}}" for method in ("GET", "POST", "DELETE"))

# positive_data_acceptance expects a schema-valid request to be accepted (2xx, or 401, 403,
# 404, 409, 429). Some valid-looking requests are rightly refused by a rule no schema can state;
# for those operations only, that one status is accepted too, with the reason.
_REFUSED_BY_DESIGN: Final[dict[str, tuple[str, str]]] = {
    # The cursor is opaque and signed: any base64url string fits the document, only one the
    # API issued decodes.
    "GET /jobs": ("400", "a cursor the API did not sign is invalid_cursor"),
    "GET /schedules": ("400", "a cursor the API did not sign is invalid_cursor"),
    # The epoch is the server's: a client's other epoch is a stale one, which means resync.
    "GET /jobs/{job_id}/messages": ("410", "another epoch than the log's is messages_expired"),
    # A job's params are checked by its type's own model (the document says `params` is an
    # object), a retry policy's maxBackoffMs may not undercut its initialBackoffMs, and an
    # Idempotency-Key already used with another body is refused (as the IETF draft says).
    "POST /jobs": ("422", "params its type refuses, a contradictory retry, a reused key"),
    # EventBridge Scheduler's expression grammar, tz database names and startAt/endAt judged
    # against the clock: a string that breaks them is invalid_expression.
    "POST /schedules": ("422", "an expression Scheduler would refuse is invalid_expression"),
}
_ACCEPTED: Final = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # the check's own


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """This module's own stack: schemathesis writes far more than the per-tenant write limit
    lets through in a minute, and a 429 would stop every linked call of the stateful phase."""
    unlimited = {c.ENV_WRITE_RATE_PER_MINUTE: "1000000"}
    with running_stack(tmp_path_factory.mktemp("tether-state"), environment=unlimited) as stack:
        yield stack


def _config(stack: LocalStack) -> schemathesis.Config:
    assert stack.urls is not None
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": stack.urls.http_url,
            "auth": {"openapi": {BEARER: {"bearer": mint(stack)}}},
            "generation": {"deterministic": True, "max-examples": EXAMPLES_PER_OPERATION},
            "checks": {"enabled": True},
            # One undeclared method per path proves the 405 rule, which is the same for all.
            "phases": {
                "coverage": {"unexpected-methods": ["patch"]},
                "stateful": {
                    "max-steps": STATEFUL_STEPS,
                    # Valid calls only: the chains are what this phase adds (invalid input is
                    # the other phases' part), and an invalid POST /jobs starts no chain.
                    "generation": {"max-examples": STATEFUL_SCENARIOS, "mode": "positive"},
                },
            },
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, status]}
                    },
                }
                for name, (status, _reason) in _REFUSED_BY_DESIGN.items()
            ],
        }
    )


def _runnable_job(context: HookContext, case: Case[Any]) -> Case[Any]:
    """A valid POST /jobs names a registered type and params its model accepts, which the
    document leaves to the type (`params` is an object there): in the stateful phase, valid
    cases start a small demo job, so the linked calls have a real job to act on. Elsewhere, and
    for invalid cases, bodies stay as generated (and a made-up type is a 422, see above)."""
    meta = case.meta
    operation = context.operation
    valid = (
        meta is not None
        and meta.phase.name == TestPhase.STATEFUL
        and meta.generation.mode == GenerationMode.POSITIVE
    )
    if operation is not None and operation.label == "POST /jobs" and valid:
        body: Any = case.body
        if isinstance(body, dict):
            case.body = {**body, "type": "demo", "params": {"items": 3, "delayMs": 1}}
            if "Idempotency-Key" in case.headers:  # case-insensitive
                # A key names one request: a client retrying sends the same body with it.
                digest = hashlib.sha256(json.dumps(case.body, sort_keys=True).encode())
                case.headers["Idempotency-Key"] = digest.hexdigest()[:32]
    return case


def _worth_sending(context: HookContext, case: Case[Any]) -> bool:
    """Requests that can reach Tether, and one boundary probe per field.

    * The local gateway's HTTP parser takes a request line of 8,190 bytes (API Gateway 10,240
      with the headers): a longer one is refused as text/plain before Tether or its document
      are involved.
    * The coverage phase probes every field of every nested object (a schedule's job's retry
      policy's maxRetries...); the nested models are pydantic models behind the same one
      validation and problem mapping, each already probed where it is a top-level field of
      POST /jobs, so probes more than two objects deep are left out to keep the run short.
    """
    query = urlencode(case.query or {}, doseq=True)
    if len(f"{case.method} {case.formatted_path}?{query} HTTP/1.1".encode()) > 8190:
        return False
    data = case.meta.phase.data if case.meta is not None else None
    location = getattr(data, "location", None) or ""
    return location.count("/properties/") <= 2


@dataclass
class Run:
    """What one schemathesis run did: its figures, and every failure and error it met."""

    statistic: Statistic = field(default_factory=Statistic)
    cases_by_phase: Counter[str] = field(default_factory=Counter)
    linked: list[tuple[str, int]] = field(default_factory=list)  # stateful calls along a link
    errors: list[str] = field(default_factory=list)

    def record(self, scenario: events.ScenarioFinished) -> None:
        recorder = scenario.recorder
        self.statistic.on_scenario_finished(recorder)
        self.cases_by_phase[scenario.phase.value] += len(recorder.cases)
        if scenario.phase.value != TestPhase.STATEFUL:
            return
        for case_id, node in recorder.cases.items():
            answer = recorder.interactions.get(case_id)
            if node.parent_id is not None and answer is not None and answer.response is not None:
                self.linked.append((node.value.operation.label, answer.response.status_code))

    def failures(self) -> list[str]:
        return [
            f"{label}: {failure.title}: {failure.message}\n  {group.code_sample}\n  -> "
            + (
                f"{group.response.status_code} {group.response.text[:300]}"
                if group.response
                else ""
            )
            for label, groups in self.statistic.failures.items()
            for group in groups.values()
            for failure in group.failures
        ]


def _run(schema: BaseSchema) -> Run:
    """Every phase of schemathesis' own runner (examples, coverage, fuzzing, stateful), as
    `st run` drives them, counted the way its report counts. Its pytest plugin cannot load a
    schema from a fixture under pytest 9 (it writes the removed `Node._nodeid`), hence the
    runner itself."""
    run = Run()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            run.record(event)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(str(event.info))
        elif isinstance(event, events.FatalError):
            run.errors.append(repr(event.exception))
    return run


def test_every_answer_of_the_api_matches_its_openapi_document(local_stack: LocalStack) -> None:
    # Given the stack's own document, a user token with every scope, and real jobs to link to
    assert local_stack.urls is not None
    schema = schemathesis.openapi.from_url(
        f"{local_stack.urls.http_url}/openapi.json", config=_config(local_stack)
    )
    schema.hook("map_case")(_runnable_job)
    schema.hook("filter_case")(_worth_sending)

    # When schemathesis runs every phase against it
    run = _run(schema)

    # Then every operation was tested, no check failed, and the stateful phase acted on a job
    # it had created (an answer other than 404 along a link from POST /jobs)
    print(f"schemathesis: {run.statistic.total_cases} cases, {dict(run.cases_by_phase)}")
    assert run.errors == []
    assert run.failures() == [], "\n".join(run.failures())
    assert run.statistic.errored_cases == 0
    assert len(run.statistic.tested_operations) == len(list(schema.get_all_operations()))
    on_created_jobs = [status for label, status in run.linked if label.startswith(_JOB_ROUTES)]
    assert any(status != HTTPStatus.NOT_FOUND for status in on_created_jobs), run.linked
