"""Every Lambda of the template has a sample event in events/ that `tether replay` routes to it.

The link is the handler itself: a function's `Handler` property (`functions.http_api.handler`)
names a Python object, and `infra.local.replay.handler_for` picks one for each sample (by the
event's shape, or by the file's name for the JobRunner's task steps, whose input is Step
Functions state); the samples replay green in tests/integration/test_replay_events.py.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.local.replay import handler_for
from shared.runner.definition import TASK_STEPS

if TYPE_CHECKING:
    from tests.infra.conftest import SynthesizedStack

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def _resolve(handler: str) -> Callable[..., Any]:
    module, _, name = handler.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    assert callable(found), handler
    return found  # type: ignore[no-any-return]


def _samples_by_handler() -> dict[int, list[str]]:
    samples: dict[int, list[str]] = {}
    for path in sorted(EVENTS_DIR.glob("*.json")):
        _, handler = handler_for(json.loads(path.read_text()), path.name)
        samples.setdefault(id(handler), []).append(path.name)
    return samples


def test_every_lambda_in_the_template_has_a_sample_event(dev_stack: SynthesizedStack) -> None:
    # Given every function of the template and the handler each sample event is routed to
    handlers = {
        function["Properties"]["Handler"] for function in dev_stack.tether_functions().values()
    }
    samples = _samples_by_handler()

    # When each function's handler is looked up among the samples' handlers
    missing = {handler for handler in handlers if id(_resolve(handler)) not in samples}

    # Then every one of the twelve functions has a sample, the six JobRunner tasks included
    assert len(handlers) == 12
    assert {h for h in handlers if h.startswith("functions.runner.")} == {
        f"functions.runner.{step}" for step in TASK_STEPS
    }
    assert missing == set()


def test_every_sample_event_is_for_a_lambda_of_the_template(dev_stack: SynthesizedStack) -> None:
    # Given the handlers of the template's functions
    deployed = {
        id(_resolve(function["Properties"]["Handler"]))
        for function in dev_stack.tether_functions().values()
    }

    # When the samples are routed / Then each reaches a function that is deployed
    orphans = {
        name
        for handler, names in _samples_by_handler().items()
        if handler not in deployed
        for name in names
    }
    assert orphans == set()
