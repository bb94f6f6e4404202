"""Local stacks for the tests that need real sockets (tests/e2e, tests/browser).

Jobs here last a few seconds: small batches, a per-item delay, and every progress message
written (no coalescing), so a client sees many seqs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from infra.local.stack import LocalStack, StackOptions
from shared import constants as c

E2E_ENVIRONMENT = {c.ENV_BATCH_SIZE: "20", c.ENV_PROGRESS_MIN_INTERVAL_MS: "0"}


@contextlib.contextmanager
def running_stack(
    state: Path, cors_origins: tuple[str, ...] = (), environment: dict[str, str] | None = None
) -> Iterator[LocalStack]:
    """A fresh stack on free ports over `state`, not persisted, stopped whatever happens;
    `environment` adds to (or overrides) E2E_ENVIRONMENT."""
    options = StackOptions(
        fresh=True,
        persist=False,
        wait_scale=0.0,
        environment={**E2E_ENVIRONMENT, **(environment or {})},
        cors_origins=cors_origins,
    )
    stack = LocalStack(state, options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
