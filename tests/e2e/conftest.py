"""The local stack on free ports with a throwaway state folder, one per test module.

Module scope (not session): handlers read the process environment and moto's state is per
process, so a stack must never outlive the tests that use it, even when xdist interleaves
modules on one worker. Jobs here last a few seconds: small batches, a per-item delay, and every
progress message written (no coalescing), so a client sees many seqs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.local.stack import LocalStack, StackOptions
from shared import constants as c
from tests.e2e.wire import mint

E2E_ENVIRONMENT = {c.ENV_BATCH_SIZE: "20", c.ENV_PROGRESS_MIN_INTERVAL_MS: "0"}

TokenFactory = Callable[..., str]


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state: Path = tmp_path_factory.mktemp("tether-state")
    options = StackOptions(fresh=True, persist=False, wait_scale=0.0, environment=E2E_ENVIRONMENT)
    stack = LocalStack(state, options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The module's stack, with its poller running again whatever a test did to it."""
    yield local_stack
    assert local_stack.poller is not None
    local_stack.poller.start()


@pytest.fixture
def token(stack: LocalStack) -> TokenFactory:
    return functools.partial(mint, stack)
