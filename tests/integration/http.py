"""The HTTP API handler called in process, as API Gateway would: one request, one answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from functions import http_api
from infra.local.events import LocalLambdaContext, http_api_event


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any  # the decoded JSON, None when empty


def call_http_api(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpAnswer:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    event = http_api_event(method, path, headers=all_headers, query=query, body=body)
    answer = http_api.handler(event, LocalLambdaContext())
    raw = answer.get("body") or ""
    return HttpAnswer(
        answer["statusCode"], answer.get("headers", {}), json.loads(raw) if raw else None
    )
