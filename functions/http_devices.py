"""HTTP routes for push devices (docs/http-api.md): `POST /devices`, `DELETE /devices/{deviceId}`.

A Powertools `Router` the HTTP API handler includes (`app.include_router`), so the routes share
its validation, problem+json errors, authentication and OpenAPI document. Thin like the rest:
parse, call `shared.services.push.Devices`, shape. The token in the body goes to SNS only; it
is never logged (the handler logs no bodies) and never echoed back.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from shared.api.openapi import LOCATION, no_content, operation, success
from shared.domain.auth import Principal
from shared.domain.push import DeviceRegistration, DeviceView
from shared.push_wiring import devices
from shared.services.push import Devices

router = Router()  # type: ignore[no-untyped-call]

DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@|-]{1,128}$")]


@functools.cache
def context() -> Devices:
    """Built at the first device request of a cold start, on the HTTP API's settings."""
    from functions import http_api  # the handler includes this router: import it late

    return devices(http_api.context().settings)


def caller() -> Principal:
    from functions import http_api

    return http_api.principal()


Caller = Annotated[Principal, Depends(caller)]


_DEVICE_LINKS = {
    "DeleteDevice": {
        "operationRef": "#/paths/~1devices~1{device_id}/delete",
        "parameters": {"device_id": "$response.body#/deviceId"},
    }
}


@router.post(
    "/devices",
    summary="Register (or re-register) a push token for the caller",
    **operation(
        {
            200: success(
                "Re-registered: the same device, its endpoint repaired if needed",
                DeviceView,
                headers=LOCATION,
            ),
            201: success("A new device", DeviceView, headers=LOCATION, links=_DEVICE_LINKS),
        },
        HTTPStatus.TOO_MANY_REQUESTS,
    ),
)
def register_device(
    caller: Caller, registration: Annotated[DeviceRegistration, Body()]
) -> Response[Any]:
    registered = context().register(caller, registration)
    device = registered.device
    return Response(
        status_code=HTTPStatus.CREATED if registered.created else HTTPStatus.OK,
        content_type="application/json",
        body=device.model_dump(mode="json"),
        headers={"Location": f"/devices/{device.device_id}"},
    )


@router.delete(
    "/devices/<device_id>",
    status_code=HTTPStatus.NO_CONTENT,
    summary="Remove a device: no more pushes to it",
    **operation({204: no_content("Removed")}, HTTPStatus.NOT_FOUND, HTTPStatus.TOO_MANY_REQUESTS),
)
def delete_device(caller: Caller, device_id: DeviceId) -> Response[None]:
    context().delete(caller, device_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)
