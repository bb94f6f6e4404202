"""The console served from another origin than the API, as `make deploy` puts it on CloudFront.

The console's files are copied to a folder with a `config.json` naming the local stack's URLs
(what the deployment writes in the cloud) and served by a plain static server on another port;
the stack allows that origin with the same CORS policy API Gateway gets (`infra.cors`). The page
then signs in with a pasted token (no local helpers: `local` is false), starts a demo job and
follows it to the end, every API call a cross-origin request with a bearer token.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from infra import cors
from infra.console import CONFIG_FILE, STATIC_DIR
from infra.local.stack import LocalStack
from tests.browser.conftest import require_chromium, screenshot, wait_until
from tests.browser.pages import CONNECTION, card, counters, start_demo, wait_status
from tests.e2e.stacks import running_stack
from tests.e2e.wire import mint

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class StaticSite:
    root: Path
    origin: str


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    root = tmp_path_factory.mktemp("console-site") / "site"
    shutil.copytree(STATIC_DIR, root)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield StaticSite(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def console_stack(
    static_site: StaticSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """The stack, allowing the static site's origin; its URLs in the site's config.json."""
    require_chromium()
    with running_stack(tmp_path_factory.mktemp("tether-cors"), (static_site.origin,)) as stack:
        assert stack.urls is not None
        config = {"httpUrl": stack.urls.http_url, "wsUrl": stack.urls.ws_url, "local": False}
        (static_site.root / CONFIG_FILE).write_text(json.dumps(config))
        yield stack


def _request(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request) as answer:  # noqa: S310
        return answer.status, dict(answer.headers)


def test_the_console_from_another_origin_runs_a_demo_job_to_the_end(
    browser: WebDriver, console_stack: LocalStack, static_site: StaticSite
) -> None:
    # Given the console on the static site, which is not the API's origin
    assert console_stack.urls is not None
    assert not console_stack.urls.http_url.startswith(static_site.origin)
    browser.get(f"{static_site.origin}/index.html")
    wait_until(browser, "document.getElementById('token') !== null")
    assert browser.execute_script("return document.getElementById('use-dev-token')") is None

    # When a user token is pasted and a demo job started from the controls
    browser.execute_script(
        """
        document.getElementById('token').value = arguments[0];
        document.querySelector('form button[type=submit]').click();
        """,
        mint(console_stack),
    )
    wait_until(browser, f"{CONNECTION}.dataset.state === 'live'")
    job_id = start_demo(browser, items=60, delay_ms=5)

    # Then the card follows it to 100 % over the WebSocket, counters exact
    wait_status(browser, job_id, "completed")
    assert counters(card(browser, job_id)) == {
        "total": 60,
        "processed": 60,
        "succeeded": 60,
        "failed": 0,
        "skipped": 0,
    }
    screenshot(browser, "09-cross-origin-completed")


def test_the_gateway_answers_preflights_and_marks_answers_for_allowed_origins_only(
    console_stack: LocalStack, static_site: StaticSite
) -> None:
    assert console_stack.urls is not None
    jobs = f"{console_stack.urls.http_url}/jobs"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }

    # A preflight from the allowed origin is answered by the gateway, as API Gateway does
    status, headers = _request(jobs, "OPTIONS", {"Origin": static_site.origin, **preflight})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == static_site.origin
    assert headers["Access-Control-Allow-Headers"] == ",".join(cors.ALLOW_HEADERS)
    assert set(headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "POST", "DELETE"}

    # Another origin's preflight gets no permission, and neither does its answer
    status, headers = _request(jobs, "OPTIONS", {"Origin": "https://evil.example", **preflight})
    assert status == 204
    assert "Access-Control-Allow-Origin" not in headers
    bearer = {"Authorization": f"Bearer {mint(console_stack)}"}
    _, headers = _request(jobs, "GET", {"Origin": "https://evil.example", **bearer})
    assert "Access-Control-Allow-Origin" not in headers

    # The allowed origin's answers say so, and expose the headers the routes set
    _, headers = _request(jobs, "GET", {"Origin": static_site.origin, **bearer})
    assert headers["Access-Control-Allow-Origin"] == static_site.origin
    assert "location" in headers["Access-Control-Expose-Headers"]
