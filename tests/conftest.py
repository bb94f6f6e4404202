"""Fixtures for every test layer: no test may reach a real AWS account."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

import pytest

# The CDK tests' jsii kernel runs on the Node that package.json pins, as `make` runs it, also
# when pytest is started by hand (set before anything imports aws-cdk-lib, which starts it).
PINNED_NODE: Final = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "node"
if PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(PINNED_NODE))

from infra.local import dynamo_rules  # noqa: E402 - after the Node choice above


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake credentials and a fixed region: a test that escapes moto fails instead of billing.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


# Tests that share an expensive fixture run on one xdist worker (`make test` runs
# `--dist loadgroup`), so the fixture is built once per run instead of once per worker: the
# synthesized CDK apps (tests/infra, session-wide), and each e2e or browser module's local stack
# (module-wide; test_restart.py starts its own stacks, so its tests spread freely).
_SHARED_CDK_APPS: Final = "tests/infra/"
_SHARED_STACK_PER_MODULE: Final = ("tests/e2e/", "tests/browser/")
_OWN_STACKS: Final = "tests/e2e/test_restart.py"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith(_SHARED_CDK_APPS):
            item.add_marker(pytest.mark.xdist_group("cdk-apps"))
        elif path.startswith(_SHARED_STACK_PER_MODULE) and path != _OWN_STACKS:
            item.add_marker(pytest.mark.xdist_group(path))


@pytest.fixture(scope="session", autouse=True)
def _dynamodb_as_aws() -> None:
    # moto accepts requests DynamoDB refuses and ends pages differently: every boto3 client
    # of the run meets DynamoDB's rules instead (infra/local/dynamo_rules.py).
    dynamo_rules.install()


_SESSION_START = time.time()
BROWSER_ARTIFACTS: Final = Path(__file__).resolve().parents[1] / ".artifacts" / "browser"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The browser tests' screenshots and figures written by this run (tests/browser)."""
    if not BROWSER_ARTIFACTS.exists():
        return
    fresh = sorted(p for p in BROWSER_ARTIFACTS.iterdir() if p.stat().st_mtime >= _SESSION_START)
    if fresh:
        terminalreporter.write_sep("-", "browser artefacts")
        for path in fresh:
            terminalreporter.write_line(str(path))
