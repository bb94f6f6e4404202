"""moto in server mode on localhost, with Tether's tables created from the shared specs.

The local stack's AWS: one HTTP endpoint that boto3 clients (handlers, CLI, tests) reach with
`AWS_ENDPOINT_URL`. Requests are handled one at a time, as DynamoDB applies each atomically
(see `moto_patches`), and, when the stack journals its writes (`journal`), each is answered
only once what it saw or wrote is on disk.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.credentials import ReadOnlyCredentials
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from infra.local import dynamo_rules, journal, moto_patches
from shared.adapters.dynamo_tables import create_tables
from shared.wiring import AWS_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_dynamodb import DynamoDBClient

LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def local_credentials() -> ReadOnlyCredentials:
    """The stack's credentials: what its clients sign with, and its `@connections` API checks."""
    return ReadOnlyCredentials(
        LOCAL_CREDENTIALS["aws_access_key_id"], LOCAL_CREDENTIALS["aws_secret_access_key"], None
    )


# Lambda's Invoke path. The local JobRunner's tasks run the real handler inside this request
# (infra/local/stepfunctions.py), and that handler calls back into this server from another
# thread: holding the lock across it would deadlock.
_LAMBDA_INVOKE = re.compile(r"^/[^/]+/functions/.+/invocations/?$")


class _SerializedApp:
    """WSGI wrapper: one request at a time inside moto, as one DynamoDB item sees them."""

    def __init__(self, app: DomainDispatcherApplication) -> None:
        self._app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if _LAMBDA_INVOKE.match(environ.get("PATH_INFO", "")):
            return list(self._app(environ, start_response))
        with moto_patches.request_lock():
            # Materialise the body inside the lock: moto builds it lazily.
            body = list(self._app(environ, start_response))
            seen = journal.durable_position()
        # Outside the lock (other requests go on; one sync serves them all): nothing leaves
        # this endpoint before the writes it reflects are on disk.
        journal.wait_durable(seen)
        return body


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per AWS call drowns the local stack's own logs."""


@dataclass
class LocalAws:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    _server: BaseWSGIServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAws is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalAws:
        moto_patches.journal_rollback()
        moto_patches.plain_attribute_values()
        dynamo_rules.install()  # DynamoDB's rules for every client of this process
        app = _SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def configure(self, config: dict[str, Any]) -> None:
        """Set moto's own options (e.g. the Step Functions interpreter) through its admin API."""
        self._admin("config", config)

    def reset(self) -> None:
        """Forget every resource: moto's state is per process, not per server."""
        self._admin("reset", {})

    def _admin(self, action: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.endpoint_url}/moto-api/{action}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            answer.read()

    def client(self, service: str, **options: Any) -> Any:
        """A boto3 client of this local AWS."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
            **options,
        )

    def table_items(self, table: str) -> list[dict[str, Any]]:
        """Every item of a table, in DynamoDB JSON, read in process (a Scan over HTTP is ~10x
        slower); under the request lock, so no write is half seen."""
        with moto_patches.request_lock():
            items: list[dict[str, Any]] = [
                item.to_json()["Attributes"]
                for item in self._backend().get_table(table).all_items()
            ]
            return items

    def put_table_items(
        self, table: str, items: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], str]]:
        """Write items (DynamoDB JSON) in process, as unconditional puts; those moto refused
        (a malformed item: no key, a value that is no attribute value), each with why."""
        refused: list[tuple[dict[str, Any], str]] = []
        with moto_patches.request_lock():
            target = self._backend().get_table(table)
            for item in items:
                try:
                    target.put_item(item)
                except Exception as error:  # moto raises anything on bad input
                    refused.append((item, f"{type(error).__name__}: {error}"[:300]))
        return refused

    def put_item(self, table: str, item: dict[str, Any]) -> None:
        """One unconditional put in process, journaled as any write through the endpoint."""
        with moto_patches.request_lock():
            self._backend().put_item(table, item)

    def apply_change(self, table: str, key: dict[str, Any], image: dict[str, Any] | None) -> None:
        """Put `image` (or delete `key` when None) in process, as a journal replay does."""
        with moto_patches.request_lock():
            backend = self._backend()
            target = backend.get_table(table)
            if image is not None:
                target.put_item(image)
            else:
                target.delete_item(*backend.get_keys_value(target, key))

    def _backend(self) -> DynamoDBBackend:
        return dynamodb_backends[DEFAULT_ACCOUNT_ID][LOCAL_REGION]

    def dynamodb(self) -> DynamoDBClient:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_REGION,
            config=AWS_CONFIG,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )

    def create_tables(self, prefix: str) -> dict[str, str]:
        return create_tables(self.dynamodb(), prefix)
