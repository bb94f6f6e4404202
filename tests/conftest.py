"""Fixtures for every test layer: no test may reach a real AWS account."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

import pytest

from infra.local import dynamo_rules
from tests import aws_calls


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


@pytest.fixture(scope="session", autouse=True)
def _aws_calls_recorded() -> None:
    # moto enforces no IAM: every call a Lambda entry point makes is recorded, and checked
    # against its role in the template (tests/aws_calls.py, tests/infra/test_iam_parity.py).
    aws_calls.install()
    aws_calls.wrap_entry_points()


# `make aws-calls` sets it: write what this run recorded into the committed set, not check it.
UPDATE_AWS_CALLS: Final = "TETHER_UPDATE_AWS_CALLS"
_worker_calls: list[aws_calls.Calls] = []


def pytest_testnodedown(node: object, error: object) -> None:
    """An xdist worker ended: keep what it recorded (`pytest_sessionfinish` below)."""
    output = getattr(node, "workeroutput", {})
    if "aws_calls" in output:
        _worker_calls.append(aws_calls.load(output["aws_calls"]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every call recorded must be in the committed set the IAM test reads (tests/aws_calls.py).

    A worker hands its recording to the controller, which checks the union once, whatever
    test ran where and in which order.
    """
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["aws_calls"] = aws_calls.dump(aws_calls.recorded())  # type: ignore[attr-defined]
        return
    calls = aws_calls.merge([aws_calls.recorded(), *_worker_calls])
    committed = aws_calls.load(aws_calls.COMMITTED.read_text())
    if os.environ.get(UPDATE_AWS_CALLS):
        aws_calls.COMMITTED.write_text(aws_calls.dump(aws_calls.merge([committed, calls])))
        return
    new = aws_calls.unknown(calls, committed)
    if new:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "AWS calls missing from tests/infra/aws_calls.json", red=True)
            reporter.write_line(aws_calls.dump(new))
            reporter.write_line("Run `make aws-calls`, then tests/infra/test_iam_parity.py.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
