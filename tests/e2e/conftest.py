"""The local stack on free ports with a throwaway state folder, one per test module.

Module scope (not session): handlers read the process environment and moto's state is per
process, so a stack must never outlive the tests that use it, even when xdist interleaves
modules on one worker. How the stack is configured: tests/e2e/stacks.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.local.stack import LocalStack
from tests.e2e.stacks import running_stack
from tests.e2e.wire import mint

TokenFactory = Callable[..., str]


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state: Path = tmp_path_factory.mktemp("tether-state")
    with running_stack(state) as stack:
        yield stack


@pytest.fixture
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The module's stack, with its poller running again whatever a test did to it."""
    yield local_stack
    assert local_stack.poller is not None
    local_stack.poller.start()


@pytest.fixture
def token(stack: LocalStack) -> TokenFactory:
    return functools.partial(mint, stack)
