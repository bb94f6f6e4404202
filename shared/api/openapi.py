"""What the HTTP API's OpenAPI document says beyond each route's types, written once.

Every operation of `functions/http_api.py` and its routers is declared with `operation(...)`:
its own success responses plus the errors it can answer, each as `application/problem+json`
with `shared.api.problems.Problem`'s schema, and the bearer (JWT) security requirement. The
errors every authenticated route can answer are listed here once (`EVERY_ROUTE`); a route names
only the ones its own use case adds (404, 409, 410, 429). The input rules of
`shared.api.request_body` run before routing for any request that carries a body, so 400, 413
and 415 belong to every route. Powertools renders it all (`responses=`, `security=` on the
route decorators, `security_schemes=` on the resolver's OpenAPI configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final, TypedDict

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, SecurityScheme
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseHeader,
)

from shared.api.problems import PROBLEM_CONTENT_TYPE, Problem

BEARER: Final = "bearerAuth"
SECURITY_SCHEMES: Final[dict[str, SecurityScheme]] = {
    BEARER: HTTPBearer(
        bearerFormat="JWT",
        description="A user token from the identity provider (`tether token` locally), or a "
        "job's resume token, which reads that one job only",
    )
}
SECURITY: Final[list[dict[str, list[str]]]] = [{BEARER: []}]

# One description per status; the body's `code` tells the cases of one status apart.
ERROR_DESCRIPTIONS: Final[Mapping[HTTPStatus, str]] = {
    HTTPStatus.BAD_REQUEST: "The body is not UTF-8 JSON (malformed_json), or the pagination "
    "cursor is malformed or not the caller's (invalid_cursor)",
    HTTPStatus.UNAUTHORIZED: "No bearer token, or one that is invalid or expired",
    HTTPStatus.FORBIDDEN: "The token lacks the scope this needs (a resume token reads its one "
    "job only)",
    HTTPStatus.NOT_FOUND: "Not in the caller's reach: missing, or another tenant's (the two "
    "answer alike)",
    HTTPStatus.CONFLICT: "The current state forbids it, a concurrent write won, or a request "
    "with the same Idempotency-Key is still in progress",
    HTTPStatus.GONE: "The log no longer holds the messages after `after`: resync from `job`",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "The body is larger than the API accepts",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "The body is not application/json (UTF-8)",
    HTTPStatus.UNPROCESSABLE_ENTITY: "The request does not validate (`errors` names each "
    "field), or Tether refuses what it asks (an invalid schedule expression, a reused "
    "Idempotency-Key, an unconfigured push platform)",
    HTTPStatus.TOO_MANY_REQUESTS: "Too many writes for the tenant: retry after Retry-After",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Something failed on Tether's side",
    HTTPStatus.SERVICE_UNAVAILABLE: "The token issuer's keys are unreachable, or too many "
    "concurrent writes: retry",
}

# What any authenticated route can answer: the body rules (400, 413, 415), authentication
# (401, 503), scopes (403), validation of its parameters (422), and the catch-all (500).
EVERY_ROUTE: Final = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
    HTTPStatus.INTERNAL_SERVER_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE,
)

_ERROR_HEADERS: Final[Mapping[HTTPStatus, dict[str, OpenAPIResponseHeader]]] = {
    HTTPStatus.UNAUTHORIZED: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: Bearer",
            "schema": {"type": "string"},
        }
    },
    HTTPStatus.TOO_MANY_REQUESTS: {
        "Retry-After": {
            "description": "Seconds to wait before the next write",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}

LOCATION: Final[dict[str, OpenAPIResponseHeader]] = {
    "Location": {"description": "The path of the resource", "schema": {"type": "string"}}
}


class Operation(TypedDict):
    """The keyword arguments of a Powertools route decorator that this module owns."""

    responses: dict[int, OpenAPIResponse]
    security: list[dict[str, list[str]]]


def operation(ok: Mapping[int, OpenAPIResponse], *errors: HTTPStatus) -> Operation:
    """An authenticated operation: its success responses, every error it can answer (the
    `EVERY_ROUTE` ones and `errors`) as problem+json, and the bearer requirement."""
    responses: dict[int, OpenAPIResponse] = dict(ok)
    for status in sorted({*EVERY_ROUTE, *errors}):
        responses[int(status)] = error_response(status)
    return Operation(responses=responses, security=SECURITY)


def error_response(status: HTTPStatus) -> OpenAPIResponse:
    response: OpenAPIResponse = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {PROBLEM_CONTENT_TYPE: {"model": Problem}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = _ERROR_HEADERS[status]
    return response


def success(
    description: str,
    model: type[Any] | None = None,
    *,
    headers: dict[str, OpenAPIResponseHeader] | None = None,
    links: dict[str, Any] | None = None,
) -> OpenAPIResponse:
    """A JSON success response: `model`'s schema, or (None) the route's return type's."""
    response: OpenAPIResponse = {"description": description}
    if model is not None:
        response["content"] = {"application/json": {"model": model}}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


def no_content(description: str) -> OpenAPIResponse:
    """A 204: an empty `content` map, so Powertools adds no JSON schema to it."""
    return {"description": description, "content": {}}
