"""The fault suite's fixtures: one world per test module, reset between cases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.world import World, build_world


@pytest.fixture(scope="module")
def module_world() -> Iterator[World]:
    with build_world() as world:
        yield world


@pytest.fixture
def world(module_world: World) -> Iterator[World]:
    module_world.reset()
    yield module_world
    module_world.reset()
