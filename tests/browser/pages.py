"""The console's page as the browser tests read and drive it: cards, counters, the demo form."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import wait_until

COUNTERS = ("total", "processed", "succeeded", "failed", "skipped")
CONNECTION = "document.getElementById('connection')"

READ_CARD = """
const card = document.querySelector(`li.card[data-job-id="${arguments[0]}"]`);
const field = (name) => Number(card.querySelector(`[data-field=${name}]`).textContent);
return {
  status: card.dataset.status,
  bar: card.querySelector('progress').value,
  percent: card.querySelector('[data-field=percent]').textContent,
  total: field('total'), processed: field('processed'), succeeded: field('succeeded'),
  failed: field('failed'), skipped: field('skipped'),
};
"""


def card_js(job_id: str) -> str:
    """A JavaScript expression: the job's card."""
    return f"document.querySelector('li.card[data-job-id=\"{job_id}\"]')"


def card_ids(driver: WebDriver) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('li.card')].map(c => c.dataset.jobId)"
    )
    return ids


def open_view(driver: WebDriver, route: str) -> None:
    driver.get(driver.current_url.split("#")[0] + "#" + route)


def start_demo(driver: WebDriver, items: int, delay_ms: int) -> str:
    """Fill the demo form and submit it; the new card's job id."""
    open_view(driver, "/")
    wait_until(driver, "document.getElementById('start-demo') !== null")
    before = set(card_ids(driver))
    driver.execute_script(
        """
        document.getElementById('demo-items').value = arguments[0];
        document.getElementById('demo-delay').value = arguments[1];
        document.getElementById('start-demo').click();
        """,
        items,
        delay_ms,
    )
    wait_until(driver, f"document.querySelectorAll('li.card').length > {len(before)}")
    (job_id,) = set(card_ids(driver)) - before
    return job_id


def card(driver: WebDriver, job_id: str) -> dict[str, Any]:
    """What the job's card shows: status, bar value, and the five counters."""
    shown: dict[str, Any] = driver.execute_script(READ_CARD, job_id)
    return shown


def counters(shown: dict[str, Any]) -> dict[str, int]:
    return {name: shown[name] for name in COUNTERS}


def wait_status(driver: WebDriver, job_id: str, status: str) -> None:
    wait_until(driver, f"{card_js(job_id)}?.dataset.status === '{status}'")
