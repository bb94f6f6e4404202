"""The web console's routes on the local gateway (infra/local/console.py), over real HTTP.

Its static files, the local-only helpers (dev token, sample CSV, push sink) and the HTTP API
beside them; the page itself is tested in a browser (tests/browser).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from infra.console import STATIC_DIR, static_files
from infra.local.console import sample_csv_text
from infra.local.stack import DEV_TENANT, LocalStack
from tests.e2e.conftest import TokenFactory
from tests.e2e.wire import Api

Answer = tuple[int, dict[str, str], bytes]


def fetch(
    stack: LocalStack, method: str, path: str, headers: dict[str, str] | None = None
) -> Answer:
    assert stack.urls is not None
    url = stack.urls.http_url + path

    async def main() -> Answer:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, allow_redirects=False, headers=headers) as answer,
        ):
            return answer.status, dict(answer.headers), await answer.read()

    return asyncio.run(main())


def test_every_static_file_is_served_with_its_type_and_nothing_outside(stack: LocalStack) -> None:
    # Given the console's files on disk
    # When each is fetched under /console/, and paths outside the folder are tried
    served = {
        path: fetch(stack, "GET", "/console/" + path.relative_to(STATIC_DIR).as_posix())
        for path in static_files()
    }
    index = fetch(stack, "GET", "/console/")
    redirect = fetch(stack, "GET", "/console")
    escapes = [fetch(stack, "GET", p)[0] for p in ("/console/../pyproject.toml", "/console/x")]
    # Then each answers 200 with its bytes, scripts as JavaScript; /console redirects
    for path, (status, headers, body) in served.items():
        assert status == 200
        assert body == path.read_bytes()
        if path.suffix == ".js":
            assert headers["Content-Type"].startswith("text/javascript")
    assert index[2] == (STATIC_DIR / "index.html").read_bytes()
    assert "default-src 'self'" in index[1]["Content-Security-Policy"]
    assert (redirect[0], redirect[1]["Location"]) == (308, "/console/")
    assert escapes == [404, 404]


def test_config_names_this_gateway_and_the_dev_token_reads_the_api(stack: LocalStack) -> None:
    # Given the running stack
    assert stack.urls is not None
    # When the page asks for its config and for a dev token
    _, _, config = fetch(stack, "GET", "/console/config.json")
    status, _, body = fetch(stack, "GET", "/console/dev-token")
    token = json.loads(body)["token"]

    async def list_jobs() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            assert stack.urls is not None
            return await Api(session, stack.urls, token).call("GET", "/jobs?limit=1")

    # Then the config is this gateway (same origin), and the token is accepted by the API
    assert json.loads(config) == {
        "httpUrl": stack.urls.http_url,
        "wsUrl": stack.urls.ws_url,
        "local": True,
    }
    assert status == 200
    assert asyncio.run(list_jobs())[0] == 200


def test_a_sample_csv_is_imported_with_its_bad_rows_counted(
    stack: LocalStack, token: TokenFactory
) -> None:
    # Given a sample CSV of 60 rows put in the local S3 by the console's helper
    status, _, body = fetch(stack, "POST", "/console/sample-csv?rows=60")
    sample = json.loads(body)
    refused = fetch(stack, "POST", "/console/sample-csv?rows=0")

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            assert stack.urls is not None
            # as the console does: with the dev tenant's token, whose import prefix holds it
            api = Api(session, stack.urls, token(tenant=DEV_TENANT))
            params = {"bucket": sample["bucket"], "key": sample["key"]}
            code, created = await api.call(
                "POST", "/jobs", {"type": "csv_import", "params": params}
            )
            assert code == 202, created
            job_id = created["job"]["jobId"]
            return await api.wait_until(job_id, lambda s: s["status"] == "completed")

    # When a csv_import job reads it
    state = asyncio.run(scenario())
    # Then every row is processed and exactly the sample's bad rows failed
    assert status == 200
    assert sample["badRows"] == sample_csv_text(60)[1] == 7  # rows 10, 20, .., 60 and 25
    assert state["counters"] == {
        "total": 60,
        "processed": 60,
        "succeeded": 53,
        "failed": 7,
        "skipped": 0,
    }
    assert refused[0] == 422
    assert json.loads(refused[2])["code"] == "validation_failed"


def test_the_push_sink_lists_deliveries_as_json(stack: LocalStack) -> None:
    # Given the local stack's push sink
    # When the console asks for its deliveries
    status, headers, body = fetch(stack, "GET", "/console/push-sink")
    # Then it answers JSON with a list (each push as the platform would have received it)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(body)["deliveries"], list)


def test_the_local_helpers_answer_only_requests_that_name_this_gateway(stack: LocalStack) -> None:
    # Given the gateway on 127.0.0.1:<port>
    assert stack.urls is not None
    port = stack.urls.http_url.rsplit(":", 1)[1]
    helpers = [("GET", "/console/dev-token"), ("GET", "/console/push-sink")]
    # When a page whose name was rebound to 127.0.0.1 (DNS rebinding) calls the helpers, its
    # browser sends that name as Host
    rebound = [
        fetch(stack, method, path, {"Host": host})
        for method, path in helpers
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", "localhost")
    ]
    # Then every call is refused, and the gateway's own names are answered
    assert {status for status, _, _ in rebound} == {403}
    assert {json.loads(body)["code"] for _, _, body in rebound} == {"host_not_allowed"}
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        status, _, body = fetch(stack, "GET", "/console/dev-token", {"Host": host})
        assert (status, "token" in json.loads(body)) == (200, True)
