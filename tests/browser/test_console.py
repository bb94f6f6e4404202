"""The web console against a live local stack, in chromium (docs/protocol.md, Client rules).

Each test drives the page as a person would (the demo controls, the card's buttons) and checks
what the page shows against the server's own state (GET /jobs/{id} through the page's API).
"""

from __future__ import annotations

import gzip
import json
import threading
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from infra.console import static_files
from infra.local.stack import LocalStack
from tests.browser.conftest import ARTIFACTS, screenshot, wait_until
from tests.browser.pages import (
    CONNECTION,
    card,
    card_js,
    counters,
    open_view,
    start_demo,
    wait_status,
)

pytestmark = pytest.mark.browser

RECORD_PROCESSED = """
const card = document.querySelector(`li.card[data-job-id="${arguments[0]}"]`);
const target = card.querySelector('[data-field=processed]');
window.seen = [Number(target.textContent)];
new MutationObserver(() => window.seen.push(Number(target.textContent)))
  .observe(target, {childList: true, characterData: true, subtree: true});
"""

FIRST_LOAD = """
const entries = [
  ...performance.getEntriesByType('navigation'),
  ...performance.getEntriesByType('resource'),
];
return entries.map(e => ({name: e.name, bytes: e.transferSize, body: e.encodedBodySize}));
"""

SERVER_STATE = """
const done = arguments[arguments.length - 1];
window.tetherConsole.hub.api.job(arguments[0]).then(done, (e) => done({error: e.message}));
"""


def server_state(driver: WebDriver, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_async_script(SERVER_STATE, job_id)
    return state


def processed_at_least(driver: WebDriver, job_id: str, count: int) -> None:
    field = f"{card_js(job_id)}.querySelector('[data-field=processed]')"
    wait_until(driver, f"Number({field}.textContent) >= {count}")


def test_first_load_is_small_and_signs_in_with_the_dev_token(console: WebDriver) -> None:
    # Given the console signed in with the local dev token (the fixture pressed the button)
    # When it loads again with an empty cache, and we read what that load transferred
    console.execute_cdp_cmd("Network.clearBrowserCache", {})
    console.refresh()
    wait_until(console, f"{CONNECTION}.dataset.state === 'live'")
    entries = console.execute_script(FIRST_LOAD)
    # Then the page came from its own static files, and the socket is live
    loaded = [entry for entry in entries if "/console/" in entry["name"]]
    figures = {
        "files": len(static_files()),
        "staticBytes": sum(path.stat().st_size for path in static_files()),
        "staticGzipBytes": sum(len(gzip.compress(p.read_bytes(), 9)) for p in static_files()),
        "firstLoadBodyBytes": sum(entry["body"] for entry in loaded),
        "firstLoadTransferredBytes": sum(entry["bytes"] for entry in loaded),
        "requests": len(loaded),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "page-weight.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"page weight: {json.dumps(figures)}")
    assert any(entry["name"].endswith("/js/app.js") for entry in loaded)
    assert console.execute_script(f"return {CONNECTION}.textContent") == "live"


def test_a_demo_job_started_from_the_controls_reaches_100_percent(console: WebDriver) -> None:
    # Given the live view
    # When a 200-item demo job is started from the demo controls
    job_id = start_demo(console, items=200, delay_ms=5)
    console.execute_script(RECORD_PROCESSED, job_id)
    screenshot(console, "01-demo-running")
    # Then its card's bar reaches 100 % and the counters are the server's
    wait_status(console, job_id, "completed")
    shown = card(console, job_id)
    assert shown["bar"] == 100
    assert shown["percent"] == "100 %"
    assert counters(shown) == {
        "total": 200,
        "processed": 200,
        "succeeded": 200,
        "failed": 0,
        "skipped": 0,
    }
    seen = console.execute_script("return window.seen")
    assert seen == sorted(seen)
    screenshot(console, "02-demo-completed")


def test_cancel_stops_a_job_mid_run(console: WebDriver) -> None:
    # Given a long demo job that has started
    job_id = start_demo(console, items=5000, delay_ms=10)
    processed_at_least(console, job_id, 40)
    # When its card's Cancel button is pressed
    console.execute_script(f"{card_js(job_id)}.querySelector('button.danger').click()")
    # Then the card ends cancelled, part of the way, with the server's counters
    wait_status(console, job_id, "cancelled")
    state = server_state(console, job_id)
    shown = card(console, job_id)
    assert state["status"] == "cancelled"
    assert 40 <= shown["processed"] < 5000
    assert counters(shown) == state["counters"]
    screenshot(console, "03-cancelled")


def test_a_card_recovers_from_a_gateway_outage_with_exact_counters(
    console: WebDriver, console_stack: LocalStack
) -> None:
    # Given a demo job running, its card live
    job_id = start_demo(console, items=600, delay_ms=10)
    processed_at_least(console, job_id, 60)
    console.execute_script(RECORD_PROCESSED, job_id)
    # When the gateway goes away for 3 s (every socket dropped, nothing listening), then returns
    outage = threading.Thread(target=console_stack.outage, args=(3.0,))
    outage.start()
    wait_until(console, f"{CONNECTION}.dataset.state === 'reconnecting'")
    label = console.execute_script(f"return {CONNECTION}.textContent")
    screenshot(console, "04-reconnecting")
    outage.join()
    # Then the page says so, reconnects, and the card ends with the server's exact counters,
    # never having shown a count go backwards
    assert label.startswith("reconnecting…")
    wait_until(console, f"{CONNECTION}.dataset.state === 'live'")
    wait_status(console, job_id, "completed")
    shown = card(console, job_id)
    assert counters(shown) == server_state(console, job_id)["counters"]
    assert shown["processed"] == 600
    seen = console.execute_script("return window.seen")
    assert seen == sorted(seen)
    assert console.execute_script("return window.tetherConsole.hub.reconnects") >= 1
    screenshot(console, "05-recovered")


def test_list_details_schedules_and_push_views_at_phone_width(console: WebDriver) -> None:
    # Given jobs from the tests above, and a phone-sized window
    console.set_window_size(390, 844)
    rows = "document.querySelectorAll('#job-table tbody tr')"
    try:
        # When the job list is opened, filtered to completed jobs
        open_view(console, "/jobs")
        wait_until(console, f"{rows}.length > 0")
        console.execute_script(
            "const s = document.getElementById('filter-status'); s.value = 'completed';"
            "s.dispatchEvent(new Event('change'));"
        )
        badges = "[...document.querySelectorAll('#job-table tbody tr .badge')]"
        completed = f"{badges}.every(b => b.textContent === 'completed')"
        wait_until(console, f"{rows}.length > 0 && {completed}")
        screenshot(console, "06-jobs-phone")
        # Then a job's details show its state and its message history from the log
        console.execute_script("document.querySelector('#job-table tbody tr a').click()")
        wait_until(console, "document.querySelectorAll('#history tbody tr').length >= 3")
        types = console.execute_script(
            "return [...document.querySelectorAll('#history tbody tr td:nth-child(2)')]"
            ".map(t => t.textContent)"
        )
        assert types[0] == "status"
        assert "progress" in types
        screenshot(console, "07-details-phone")
        # And a schedule made in the schedules view can be run now
        open_view(console, "/schedules")
        wait_until(console, "document.getElementById('schedule-table') !== null")
        console.execute_script("document.querySelector('form.panel button[type=submit]').click()")
        schedules = "document.querySelectorAll('#schedule-table tr[data-schedule-id]')"
        wait_until(console, f"{schedules}.length === 1")
        console.execute_script(
            "[...document.querySelectorAll('#schedule-table button')]"
            ".find(b => b.textContent === 'Run now').click()"
        )
        wait_until(console, "document.querySelector('main [role=status] a') !== null")
        screenshot(console, "08-schedules-phone")
        # And the push sink view answers (nothing pushed: no device registered)
        open_view(console, "/push")
        wait_until(console, "document.querySelectorAll('#push-table tbody tr').length === 1")
    finally:
        console.set_window_size(1280, 900)
