"""The schedules routes of the HTTP API, as a Powertools Router.

`functions.http_api` includes this router, so these routes share its resolver: request
validation, the OpenAPI document and the one problem+json mapping of errors (an invalid
expression is a 422 naming it, another tenant's schedule a 404). Thin like the rest:
`shared.services.schedules.SchedulesApi` does the work.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from shared.api.openapi import LOCATION, no_content, operation, success
from shared.api.schedule_schemas import ScheduleList, ScheduleRunStarted
from shared.api.schemas import Cursor
from shared.domain.auth import Principal
from shared.domain.schedules import ScheduleRequest, ScheduleState, ScheduleView
from shared.schedule_wiring import schedules_api
from shared.services.schedules import SchedulesApi
from shared.wiring import load_settings

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

ScheduleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@|-]{1,128}$")]


@functools.cache
def context() -> SchedulesApi:
    """Built at the first schedules request of a cold start, from the environment."""
    return schedules_api(load_settings())


def caller() -> Principal:
    """The HTTP API's verified caller: one authenticator per cold start, for every route."""
    from functions import http_api  # the handler includes this router: import it late

    return http_api.principal()


Caller = Annotated[Principal, Depends(caller)]


_SCHEDULE_LINKS = {
    name: {
        "operationRef": f"#/paths/{path}/{method}",
        "parameters": {"schedule_id": "$response.body#/scheduleId"},
    }
    for name, path, method in (
        ("GetSchedule", "~1schedules~1{schedule_id}", "get"),
        ("PauseSchedule", "~1schedules~1{schedule_id}~1pause", "post"),
        ("ResumeSchedule", "~1schedules~1{schedule_id}~1resume", "post"),
        ("RunSchedule", "~1schedules~1{schedule_id}~1run", "post"),
        ("DeleteSchedule", "~1schedules~1{schedule_id}", "delete"),
    )
}
_STATE_CHANGE = operation(
    {200: success("The schedule after the request")},
    HTTPStatus.NOT_FOUND,
    HTTPStatus.TOO_MANY_REQUESTS,
)


@router.post(
    "/schedules",
    status_code=HTTPStatus.CREATED,
    summary="Create a recurring schedule (rate or cron, with a timezone)",
    **operation(
        {
            201: success(
                "The schedule, enabled, with its next run",
                ScheduleView,
                headers=LOCATION,
                links=_SCHEDULE_LINKS,
            )
        },
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def create_schedule(caller: Caller, request: Annotated[ScheduleRequest, Body()]) -> Response[Any]:
    created = context().create(caller, request)
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body=created.model_dump(mode="json"),
        headers={"Location": f"/schedules/{created.schedule_id}"},
    )


@router.get(
    "/schedules",
    summary="List the tenant's schedules",
    **operation({200: success("A page of the tenant's schedules")}),
)
def list_schedules(
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Cursor = None,
) -> ScheduleList:
    schedules, next_cursor = context().list(caller, limit=limit, cursor=cursor)
    return ScheduleList(schedules=schedules, next_cursor=next_cursor)


@router.get(
    "/schedules/<schedule_id>",
    summary="A schedule with lastRunAt, nextRunAt, runs",
    **operation({200: success("The schedule")}, HTTPStatus.NOT_FOUND),
)
def get_schedule(caller: Caller, schedule_id: ScheduleId) -> ScheduleView:
    return context().get(caller, schedule_id)


@router.post(
    "/schedules/<schedule_id>/pause", summary="Pause (disables it; idempotent)", **_STATE_CHANGE
)
def pause_schedule(caller: Caller, schedule_id: ScheduleId) -> ScheduleView:
    return context().set_state(caller, schedule_id, ScheduleState.PAUSED)


@router.post(
    "/schedules/<schedule_id>/resume", summary="Resume (enables it; idempotent)", **_STATE_CHANGE
)
def resume_schedule(caller: Caller, schedule_id: ScheduleId) -> ScheduleView:
    return context().set_state(caller, schedule_id, ScheduleState.ENABLED)


@router.post(
    "/schedules/<schedule_id>/run",
    status_code=HTTPStatus.ACCEPTED,
    summary="Run now: start one job from the schedule's request",
    **operation(
        {202: success("The job it started", ScheduleRunStarted, headers=LOCATION)},
        HTTPStatus.NOT_FOUND,
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def run_schedule(caller: Caller, schedule_id: ScheduleId) -> Response[Any]:
    launched = context().run_now(caller, schedule_id)
    started = ScheduleRunStarted(job=launched.job, admitted=launched.admitted)
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type="application/json",
        body=started.model_dump(mode="json"),
        headers={"Location": f"/jobs/{launched.job.job_id}"},
    )


@router.delete(
    "/schedules/<schedule_id>",
    status_code=HTTPStatus.NO_CONTENT,
    summary="Delete a schedule",
    **operation(
        {204: no_content("Deleted, with its Scheduler schedule")},
        HTTPStatus.NOT_FOUND,
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def delete_schedule(caller: Caller, schedule_id: ScheduleId) -> Response[None]:
    context().delete(caller, schedule_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)
