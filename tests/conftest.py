"""Fixtures for every test layer: no test may reach a real AWS account."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Final

import pytest
from xdist.scheduler import LoadScopeScheduling

# The CDK tests' jsii kernel runs on the Node that package.json pins, as `make` runs it, also
# when pytest is started by hand (set before anything imports aws-cdk-lib, which starts it).
PINNED_NODE: Final = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "node"
if PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(PINNED_NODE))

from infra.local import dynamo_rules  # noqa: E402 - after the Node choice above
from tests import aws_calls  # noqa: E402


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


# `make test` runs `-n 3 --dist loadscope` with this scheduler: a module runs whole and in
# order on one worker (its module-scoped moto or local stack is built once), every tests/infra
# module shares one worker (the synthesized CDK apps are session fixtures: built once a run, not
# once per worker), and the longest scopes start first so that none is left for the end while
# the other workers idle.
_SHARED_CDK_APPS: Final = "tests/infra/"
# Longest first (wall seconds of a 2-core run, 15 s and more); the rest follow in collection
# order.
_FIRST: Final = (
    "tests/infra",
    "tests/integration/test_recovery_property.py",
    "tests/e2e/test_restart.py",
    "tests/integration/test_replay_events.py",
    "tests/e2e/test_local_stack.py",
    "tests/integration/test_concurrency.py",
    "tests/e2e/test_unclean_stop.py",
    "tests/browser/test_console.py",
    "tests/integration/runner/test_failure_paths.py",
    "tests/integration/runner/test_runner.py",
    "tests/e2e/test_openapi_conformance.py",
)


def scope_of(nodeid: str) -> str:
    """The unit one worker runs whole: its module, or tests/infra for every infra module."""
    path = nodeid.split("::", 1)[0]
    return _SHARED_CDK_APPS.rstrip("/") if path.startswith(_SHARED_CDK_APPS) else path


class TetherScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's loadscope over `scope_of`, scopes taken in the collection's order."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> TetherScheduling | None:
    if config.getvalue("dist") != "loadscope":
        return None
    config.option.loadscopereorder = False  # keep the order below, not "most tests first"
    return TetherScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Costliest scopes first (a stable sort: each module keeps its own order)."""
    rank = {scope: index for index, scope in enumerate(_FIRST)}
    items.sort(key=lambda item: rank.get(scope_of(item.nodeid), len(_FIRST)))


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
