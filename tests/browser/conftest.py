"""The web console in a real browser: Debian's chromium driven by Selenium, against a local stack.

The stack runs on free ports with a throwaway state folder (as in tests/e2e), one per module;
one headless chromium per module too. Chromium comes from Debian (`make browser-deps` installs
it, and `make test` runs that first); nothing is downloaded by Selenium or by the tests. Without
chromium the tests are skipped with the command to run, except under CI where they fail.

Screenshots go to `.artifacts/browser/` (gitignored); tests/conftest.py lists them at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from infra.local.stack import LocalStack
from tests.e2e.stacks import running_stack

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
ARTIFACTS: Final = Path(__file__).resolve().parents[2] / ".artifacts" / "browser"
WAIT_SECONDS: Final = 30.0

pytestmark = pytest.mark.browser


def require_chromium() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = "Debian's chromium and chromium-driver are not installed: run `make browser-deps`"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    require_chromium()
    state: Path = tmp_path_factory.mktemp("tether-console")
    with running_stack(state) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser(
    console_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def console(browser: WebDriver, console_stack: LocalStack) -> WebDriver:
    """The console, signed in with the local dev token, its socket live."""
    assert console_stack.urls is not None
    browser.get(console_stack.urls.console_url)
    wait_until(browser, "document.getElementById('use-dev-token') !== null")
    browser.execute_script("document.getElementById('use-dev-token').click()")
    wait_until(browser, "document.getElementById('connection').dataset.state === 'live'")
    return browser


def wait_until(driver: WebDriver, script: str, timeout: float = WAIT_SECONDS) -> Any:
    """Wait until a JavaScript expression is truthy; its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(f"return {script}")
    )


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path
