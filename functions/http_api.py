"""HTTP API Lambda (API Gateway HTTP API, payload v2): the REST routes (docs/http-api.md).

Thin: before the resolver sees a body, `shared.api.request_body` applies the input rules
(JSON object, media type, UTF-8, what DynamoDB can store); Powertools wires logging, tracing and
metrics and validates every input against the route's types; `shared.services.api.JobsApi`
does the work (a job's params are checked by its type's own model there); errors become
problem+json in one handler. The OpenAPI document is generated from these same functions
(`GET /openapi.json`).
"""

from __future__ import annotations

import functools
import json
import re
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.http_devices import router as devices_router
from functions.http_schedules import router as schedules_router
from shared.api.openapi import LOCATION, SECURITY_SCHEMES, no_content, operation, success
from shared.api.problems import PROBLEM_CONTENT_TYPE, Problem, problem, problem_for
from shared.api.request_body import JSON_MEDIA_TYPE, refuse_body
from shared.api.schemas import Cursor, JobCreated, JobList, MessageList
from shared.constants import METRICS_NAMESPACE, SERVICE_NAME
from shared.domain.auth import Principal
from shared.domain.errors import InvalidRequest, MessagesExpired, RateLimited, TetherError
from shared.domain.models import JobRequest, JobState, JobStatus
from shared.services.auth import bearer_token
from shared.wiring import HttpApiContext, http_api_context, load_auth_settings, load_settings

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
app = APIGatewayHttpResolver(enable_validation=True)
# One configuration for both renderings of the document: /openapi.json and the /docs page.
app.configure_openapi(
    title="Tether", version="2", openapi_version="3.1.0", security_schemes=SECURITY_SCHEMES
)
app.enable_swagger(path="/docs")

JOB_ID_PATTERN = r"[A-Za-z0-9._:@|-]{1,128}"
JobId = Annotated[str, Path(pattern=rf"^{JOB_ID_PATTERN}$")]
_JOB_PATH = re.compile(rf"^/jobs/(?P<job_id>{JOB_ID_PATTERN})(?:/|$)")
app.include_router(schedules_router)  # /schedules...


@functools.cache
def context() -> HttpApiContext:
    """Built at the first request of a cold start, from the environment (settings models)."""
    return http_api_context(load_settings(), load_auth_settings())


def principal() -> Principal:
    """The verified caller; 401 before any route runs when the token is missing or bad."""
    token = bearer_token(app.current_event.headers.get("authorization"))
    return context().authenticator.authenticate(token)


Caller = Annotated[Principal, Depends(principal)]


# -- routes ---------------------------------------------------------------------------------


# The created job's id feeds the routes about that job (OpenAPI links: clients and the stateful
# API tests follow them from POST /jobs).
_CREATED_JOB_ID = {"job_id": "$response.body#/job/jobId"}
_JOB_LINKS = {
    name: {"operationRef": f"#/paths/{path}/{method}", "parameters": _CREATED_JOB_ID}
    for name, path, method in (
        ("GetJob", "~1jobs~1{job_id}", "get"),
        ("JobMessages", "~1jobs~1{job_id}~1messages", "get"),
        ("CancelJob", "~1jobs~1{job_id}~1cancel", "post"),
        ("PauseJob", "~1jobs~1{job_id}~1pause", "post"),
        ("ResumeJob", "~1jobs~1{job_id}~1resume", "post"),
        ("DeleteJob", "~1jobs~1{job_id}", "delete"),
    )
}


@app.post(
    "/jobs",
    status_code=HTTPStatus.ACCEPTED,
    summary="Create a job",
    **operation(
        {
            202: success(
                "The job, queued or scheduled, and its resume token",
                JobCreated,
                headers=LOCATION,
                links=_JOB_LINKS,
            )
        },
        HTTPStatus.CONFLICT,
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def create_job(
    caller: Caller,
    request: Annotated[JobRequest, Body()],
    idempotency_key: Annotated[
        str | None, Header(max_length=128, description="retry-safe creation")
    ] = None,
) -> Response[Any]:
    created = context().api.create(caller, request, idempotency_key)
    metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type="application/json",
        body=created.model_dump(mode="json"),
        headers={"Location": f"/jobs/{created.job.job_id}"},
    )


@app.get(
    "/jobs",
    summary="List the tenant's jobs",
    **operation({200: success("A page of the tenant's jobs, newest first")}),
)
def list_jobs(
    caller: Caller,
    status: Annotated[JobStatus | None, Query()] = None,
    type: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Cursor = None,
) -> JobList:
    return context().api.list(caller, status=status, job_type=type, limit=limit, cursor=cursor)


@app.get(
    "/jobs/<job_id>",
    summary="State sync: the job's full state, seq and epoch",
    **operation({200: success("The job's state")}, HTTPStatus.NOT_FOUND),
)
def get_job(caller: Caller, job_id: JobId) -> JobState:
    return context().api.get(caller, job_id)


@app.get(
    "/jobs/<job_id>/messages",
    summary="The job's log after a seq (410 when expired)",
    **operation(
        {200: success("The messages after `after`, oldest first")},
        HTTPStatus.NOT_FOUND,
        HTTPStatus.GONE,
    ),
)
def job_messages(
    caller: Caller,
    job_id: JobId,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    epoch: Annotated[str | None, Query(max_length=32)] = None,
) -> MessageList:
    return context().api.messages(caller, job_id, after=after, limit=limit, epoch=epoch)


_CONTROL = operation(
    {200: success("The job's state after the request")},
    HTTPStatus.NOT_FOUND,
    HTTPStatus.CONFLICT,
    HTTPStatus.TOO_MANY_REQUESTS,
)


@app.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel (idempotent)",
    **_CONTROL,
)
def cancel_job(caller: Caller, job_id: JobId) -> JobState:
    return context().api.control(caller, job_id, "cancel")


@app.post(
    "/jobs/<job_id>/pause",
    summary="Pause (idempotent)",
    **_CONTROL,
)
def pause_job(caller: Caller, job_id: JobId) -> JobState:
    return context().api.control(caller, job_id, "pause")


@app.post(
    "/jobs/<job_id>/resume",
    summary="Resume (idempotent)",
    **_CONTROL,
)
def resume_job(caller: Caller, job_id: JobId) -> JobState:
    return context().api.control(caller, job_id, "resume")


@app.delete(
    "/jobs/<job_id>",
    status_code=HTTPStatus.NO_CONTENT,
    summary="Delete a finished job",
    **operation(
        {204: no_content("Deleted, with its messages")},
        HTTPStatus.NOT_FOUND,
        HTTPStatus.CONFLICT,
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def delete_job(caller: Caller, job_id: JobId) -> Response[None]:
    context().api.delete(caller, job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)


app.include_router(devices_router)  # POST /devices, DELETE /devices/{deviceId}


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type="application/json", body=_document())


@functools.cache
def _document() -> str:
    """Generated once per cold start (hundreds of ms of CPU): the routes never change."""
    return app.get_openapi_json_schema()


# -- errors: one mapping to problem+json ------------------------------------------------------


def _problem_response(body: Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=body.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body.body()),  # Powertools serialises only application/json itself
        headers=headers,
    )


@app.exception_handler(TetherError)  # type: ignore[untyped-decorator]
def tether_error(error: TetherError) -> Response[Any]:
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, MessagesExpired) and error.snapshot is not None:
        extra["job"] = error.snapshot
    if isinstance(error, InvalidRequest):
        extra["errors"] = error.fields()
    body = problem_for(error, **extra)
    if body.status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="tether"'
    logger.info("request refused", extra={"code": error.code, "status": body.status})
    return _problem_response(body, headers)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def invalid_request(error: RequestValidationError) -> Response[Any]:
    fields = [
        {"loc": list(e["loc"]), "type": e["type"], "message": e.get("msg", "")}
        for e in error.errors()
    ]
    body = problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
        "the request does not match the API; see `errors` for each offending field",
        title="Invalid request",
        errors=fields,
    )
    return _problem_response(body)


@app.not_found
def route_not_found(_: Exception) -> Response[Any]:
    allowed = _methods_of(app.current_event.path)
    if allowed:  # the path exists, the method does not: 405 naming the others (RFC 9110)
        method = app.current_event.http_method.upper()
        detail = f"{method} is not allowed here; use {', '.join(allowed)}"
        body = problem(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", detail)
        return _problem_response(body, {"Allow": ", ".join(allowed)})
    return _problem_response(
        problem(HTTPStatus.NOT_FOUND, "route_not_found", "no such route", title="Not found")
    )


def _methods_of(path: str) -> list[str]:
    """The methods the resolver routes for `path`. Powertools keeps its routes in private
    lists and has no 405 of its own; test_http_api pins this against the routes."""
    routes = [*app._static_routes, *app._dynamic_routes]
    return sorted({route.method for route in routes if route.rule.match(path)})


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected(_: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return _problem_response(
        problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    # The request id is the correlation id (API Gateway's, in its access log too); a request
    # about one job also carries its id, as every log of that job does.
    job_id = _job_id_of(event)
    if job_id is None:
        logger.remove_keys(["jobId"])
    else:
        logger.append_keys(jobId=job_id)
    refused = _refused_body(event)
    if refused is not None:
        return refused
    if event.get("body"):  # accepted as JSON; Powertools matches the media type case-sensitively
        event["headers"] = {**(event.get("headers") or {}), "content-type": JSON_MEDIA_TYPE}
    context().idempotency.register_lambda_context(lambda_context)
    return app.resolve(event, lambda_context)


def _job_id_of(event: dict[str, Any]) -> str | None:
    match = _JOB_PATH.match(str(event.get("rawPath") or ""))
    return match["job_id"] if match else None


def _refused_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """The input rules, before anything parses the body (route validation would run first)."""
    refusal = refuse_body(
        event.get("headers") or {},
        event.get("body"),
        base64_encoded=bool(event.get("isBase64Encoded")),
        max_bytes=context().settings.max_body_bytes,
    )
    if refusal is None:
        return None
    logger.info("request refused", extra={"code": refusal.code, "status": refusal.status})
    return {
        "statusCode": refusal.status,
        "headers": {"Content-Type": PROBLEM_CONTENT_TYPE},
        "body": json.dumps(refusal.body()),
        "isBase64Encoded": False,
    }
