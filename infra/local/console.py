"""The web console on the local gateway: its static files, and the helpers only `tether dev` has.

`console_routes` gives the gateway the routes it adds before the HTTP API's catch-all:

* `/console/` and every file of `infra/console/static/` (no build step: what is on disk is
  what the browser runs), `no-cache` with validators so an edit shows on the next reload;
* `GET /console/config.json`: the URLs the page talks to (this gateway, same origin);
* `GET /console/dev-token`: a user token for tenant `local`, user `dev` (the "use local dev
  token" button), minted with the stack's own secret;
* `GET /console/push-sink`: what would have reached APNs/FCM (the push sink's deliveries);
* `POST /console/sample-csv?rows=N`: a CSV with some bad rows put in the local import bucket
  under the dev tenant's `imports/local/`, its bucket and key returned, for the demo's
  `csv_import` (a job may read only its own tenant's uploads).

The helpers hand out tokens and read local state, so they answer loopback callers only, even
when `tether dev --host` listens on other addresses, and only when the `Host` header names this
gateway (a loopback name and its port): a page on another site whose name was rebound to
127.0.0.1 (DNS rebinding) reaches the port from the browser, but sends its own name. Refusals
are problem+json like the API's.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from infra.console import CONFIG_FILE, STATIC_DIR, content_security_policy
from shared.api.problems import PROBLEM_CONTENT_TYPE, problem

PREFIX: Final = "/console"
# The local stack's import bucket (TETHER_IMPORT_BUCKET), where csv_import jobs read from.
IMPORT_BUCKET: Final = "tether-imports"
SAMPLE_ROWS_DEFAULT: Final = 200
SAMPLE_ROWS_MAX: Final = 100_000
# The page loads only its own files. Locally it talks to this gateway, on whatever host and
# port `tether dev` listens (http: and ws:, which 'self' does not cover for WebSockets everywhere);
# the cloud's CSP (`infra.cloud.console`) names the region's execute-api instead.
CONTENT_SECURITY_POLICY: Final = content_security_policy("http: https: ws: wss:")
LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class SampleObject:
    bucket: str
    key: str
    rows: int
    bad_rows: int


@dataclass(frozen=True)
class ConsoleHelpers:
    """What the local-only routes need from the running stack."""

    dev_token: Callable[[], str]
    deliveries: Callable[[], list[dict[str, Any]]]
    sample_csv: Callable[[int], SampleObject]


def sample_csv_text(rows: int) -> tuple[str, int]:
    """Contacts with a bad email every 10th row and a bad age every 25th: (text, bad rows)."""
    lines = ["email,name,age"]
    bad = 0
    for row in range(1, rows + 1):
        email = f"user{row}@example.com" if row % 10 else f"user{row}-at-example.com"
        age = str(20 + row % 50) if row % 25 else "-3"
        bad += 1 if row % 10 == 0 or row % 25 == 0 else 0
        lines.append(f"{email},User {row},{age}")
    return "\n".join(lines) + "\n", bad


def put_sample_csv(s3: Any, rows: int, key: str) -> SampleObject:
    """Put a sample CSV in the local import bucket (creating the bucket on first use)."""
    text, bad = sample_csv_text(rows)
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if IMPORT_BUCKET not in existing:
        s3.create_bucket(Bucket=IMPORT_BUCKET)
    s3.put_object(Bucket=IMPORT_BUCKET, Key=key, Body=text.encode(), ContentType="text/csv")
    return SampleObject(bucket=IMPORT_BUCKET, key=key, rows=rows, bad_rows=bad)


def console_routes(helpers: ConsoleHelpers) -> Sequence[web.RouteDef]:
    return [
        web.get(PREFIX, _redirect),
        web.get(PREFIX + "/", _index),
        web.get(f"{PREFIX}/{CONFIG_FILE}", _config),
        web.get(PREFIX + "/dev-token", _local_only(lambda _: {"token": helpers.dev_token()})),
        web.get(PREFIX + "/push-sink", _local_only(lambda _: {"deliveries": helpers.deliveries()})),
        web.post(PREFIX + "/sample-csv", _local_only(lambda r: _sample(r, helpers))),
        web.get(PREFIX + "/{name:.+}", _static),
    ]


# -- static files ---------------------------------------------------------------------------


async def _redirect(_: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PREFIX + "/")


async def _index(_: web.Request) -> web.StreamResponse:
    return _file(STATIC_DIR / "index.html")


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "\x00" in name:  # `%00`: no file has one, and the OS refuses it (a 500 otherwise)
        return _problem(HTTPStatus.NOT_FOUND, "route_not_found", "no such console file")
    root = STATIC_DIR.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return _problem(HTTPStatus.NOT_FOUND, "route_not_found", "no such console file")
    return _file(path)


def _file(path: Path) -> web.StreamResponse:
    headers = {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }
    if path.suffix == ".js":  # module scripts need a JavaScript type, whatever mimetypes says
        headers["Content-Type"] = "text/javascript; charset=utf-8"
    return web.FileResponse(path, headers=headers)


async def _config(request: web.Request) -> web.StreamResponse:
    """Same origin: the API at this gateway's root, the WebSocket at /ws."""
    origin = f"{request.scheme}://{request.host}"
    ws_scheme = "wss" if request.scheme == "https" else "ws"
    return web.json_response(
        {"httpUrl": origin, "wsUrl": f"{ws_scheme}://{request.host}/ws", "local": True},
        headers={"Cache-Control": "no-store"},
    )


# -- local-only helpers ---------------------------------------------------------------------


def _local_only(
    answer: Callable[[web.Request], dict[str, Any]],
) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not _loopback(request.remote):
            return _problem(HTTPStatus.FORBIDDEN, "local_only", "only for callers on this machine")
        if not _names_this_gateway(request):
            detail = "the Host header must name this gateway, e.g. 127.0.0.1:<its port>"
            return _problem(HTTPStatus.FORBIDDEN, "host_not_allowed", detail)
        try:
            body = answer(request)
        except ValueError as invalid:
            return _problem(HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed", str(invalid))
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return handle


def _sample(request: web.Request, helpers: ConsoleHelpers) -> dict[str, Any]:
    raw = request.query.get("rows", str(SAMPLE_ROWS_DEFAULT))
    if not raw.isdigit() or not 1 <= int(raw) <= SAMPLE_ROWS_MAX:
        raise ValueError(f"rows must be a whole number from 1 to {SAMPLE_ROWS_MAX}")
    sample = helpers.sample_csv(int(raw))
    return {
        "bucket": sample.bucket,
        "key": sample.key,
        "rows": sample.rows,
        "badRows": sample.bad_rows,
    }


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _names_this_gateway(request: web.Request) -> bool:
    """`Host` is a loopback name with the port this request came in on."""
    address = request.transport.get_extra_info("sockname") if request.transport else None
    if not address:
        return False
    port = address[1]
    host = request.headers.get("Host", "").lower()
    allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    if port == 80:  # the default port may go unsaid
        allowed.update(LOOPBACK_NAMES)
    return host in allowed


def _problem(status: HTTPStatus, code: str, detail: str) -> web.Response:
    body = problem(status, code, detail).body()
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_CONTENT_TYPE)
