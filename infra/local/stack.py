"""The local stack: all of Tether in one process, no Docker, no AWS account (docs/local-stack.md).

`LocalStack(state_dir).start()` brings up, in order: moto in server mode (`LocalAws`) with the
tables from the shared specs, their items restored from the last run (`persistence`: the
snapshot, then the write journal of everything after it), and moto's
Step Functions interpreter running the shared JobRunner definition with every task calling the
real handler in process (`stepfunctions`); the gateway (`gateway`: HTTP API, WebSocket API,
`@connections`, and the web console at `/console/`: `console`) on one localhost port; then the
background services (`services`): the messages-stream poller feeding the dispatcher
(`poller`), the push sink (`push_sink`: SNS platform applications in moto, each push logged),
the ticker (`ticker`: due schedules through the launcher, the hourly cleanup), the periodic
snapshot, and any given to the constructor;
started in that order, stopped in reverse. It returns the URLs and writes them to
`<state_dir>/dev.json`, which `tether` commands read to find the stack. `stop()` undoes it all
and saves the tables; a stop that never ran (SIGKILL) loses nothing either (`persistence`).

The handlers read their settings from the environment, exactly as in Lambda, so the stack sets
it for this process while it runs: one stack per process (tests: one per module).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import boto3
from aiohttp import web
from aws_lambda_powertools import Logger
from botocore.config import Config

from infra.cors import CorsPolicy
from infra.local import moto_patches, persistence, recovery, snapshot
from infra.local import stepfunctions as local_sfn
from infra.local.aws import LOCAL_CREDENTIALS, LOCAL_REGION, LocalAws, local_credentials
from infra.local.console import (
    IMPORT_BUCKET,
    ConsoleHelpers,
    SampleObject,
    console_routes,
    put_sample_csv,
)
from infra.local.environments import LocalFunction, mark_management_calls
from infra.local.events import handler_caches
from infra.local.gateway import WS_PATH, Gateway, GatewayHandlers, GatewayLimits
from infra.local.poller import PollerOptions, StreamPoller
from infra.local.push_sink import create_platform_applications, platform_environment
from infra.local.secrets import DEV_FILE, LocalSecrets, local_secrets
from infra.local.services import (
    BackgroundService,
    PollerService,
    PushSinkService,
    SnapshotService,
    TickerService,
)
from infra.local.ticker import Ticker
from shared import constants as c
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.jobs.csv_import import tenant_import_prefix
from shared.services.auth import mint_dev_token
from shared.tables import TABLES
from shared.wiring import load_settings, scheduler_gateway

TABLE_PREFIX: Final = "tether"
CONSOLE_PATH: Final = "/console/"
DEV_TOKEN_TTL: Final = timedelta(hours=12)
DEV_TENANT: Final = "local"  # the console's dev token acts for it; its samples go under its prefix
EXPIRY_CHECK_SECONDS: Final = 5.0
_ENDED: Final = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")

logger = Logger(service="tether-local")
_running: LocalStack | None = None
_running_lock = threading.Lock()


class StackAlreadyRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class StackUrls:
    http_url: str
    ws_url: str
    management_url: str
    aws_endpoint: str

    @property
    def console_url(self) -> str:
        return self.http_url + CONSOLE_PATH

    def to_json(self) -> dict[str, str]:
        return {
            "httpUrl": self.http_url,
            "wsUrl": self.ws_url,
            "managementUrl": self.management_url,
            "awsEndpoint": self.aws_endpoint,
            "consoleUrl": self.console_url,
        }


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    http_port: int = 0  # 0: any free port
    aws_port: int = 0
    fresh: bool = False  # start empty and forget the previous run's tables
    persist: bool = True  # save the tables on stop
    snapshot_every_seconds: float = 60.0  # and this often while running (when persisting)
    tick_seconds: float = 1.0  # how often the ticker looks for due schedules
    wait_scale: float = 1.0  # Step Functions waits (retry backoff) take this share of real time
    environment: Mapping[str, str] = field(default_factory=dict)  # extra handler settings
    poller: PollerOptions = field(default_factory=PollerOptions)
    limits: GatewayLimits = field(default_factory=GatewayLimits)
    workers: int = 32  # handler threads, as Lambda's concurrency
    # Browser origins allowed to call the HTTP API (CORS, as `tether:corsOrigins` in the cloud):
    # e.g. the console or a web app served from another port.
    cors_origins: tuple[str, ...] = ()


class LocalStack:
    def __init__(
        self,
        state_dir: Path,
        options: StackOptions | None = None,
        services: Sequence[BackgroundService] = (),
    ) -> None:
        self.state_dir = state_dir
        self.options = options or StackOptions()
        # Started after the poller, in this order, once the handlers are configured (so they
        # can call them); stopped in reverse before the tables are saved.
        self.services: list[BackgroundService] = list(services)
        self.aws = LocalAws(host=self.options.host, port=self.options.aws_port)
        self.tables: dict[str, str] = {}
        self.urls: StackUrls | None = None
        self.secrets: LocalSecrets | None = None
        self.poller: StreamPoller | None = None
        self.push_sink = PushSinkService()  # what would have reached APNs/FCM
        self.gateway: Gateway | None = None
        self.restored: snapshot.SnapshotReport | None = None
        self.state_report = persistence.StateReport()
        self.state: persistence.LocalState | None = None
        self.saved: snapshot.SnapshotReport | None = None
        self.recovered = recovery.Recovered()  # after a restart: what was rebuilt
        self._saved_environ: dict[str, str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._expiry: concurrent.futures.Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._owns_dev_file = False
        self._configured = False  # the handlers' environment is this stack's

    @property
    def snapshot_path(self) -> Path:
        return self.state_dir / snapshot.SNAPSHOT_FILE

    @property
    def dev_file(self) -> Path:
        return self.state_dir / DEV_FILE

    # -- start ------------------------------------------------------------------------------

    def start(self) -> StackUrls:
        global _running
        if self.urls is not None:
            return self.urls
        with _running_lock:
            if _running is not None:
                # moto's state and the handlers' environment belong to the process: a second
                # stack would wipe the first one's tables.
                raise StackAlreadyRunning("a local stack already runs in this process")
            _running = self
        self._saved_environ = dict(os.environ)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackUrls:
        started = time.perf_counter()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_a_second_stack()
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": LOCAL_REGION,
                "AWS_REGION": LOCAL_REGION,
                "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        # A session resolves credentials once: a fresh one, so the handlers' clients sign with
        # the stack's (as a Lambda with its role's), which its @connections API checks.
        boto3.setup_default_session()
        self.aws.start()
        self.aws.reset()
        endpoint = self.aws.endpoint_url
        # moto's interpreter calls Lambda on localhost:MOTO_PORT (docs/local-stack.md).
        os.environ["MOTO_PORT"] = endpoint.rsplit(":", 1)[1]
        self.aws.configure(dict(local_sfn.MOTO_CONFIG))
        self.tables = self.aws.create_tables(TABLE_PREFIX)
        self.state = persistence.LocalState(self.state_dir, self.aws, self.tables)
        if self.options.fresh:
            self.state.forget()
        self.state_report = self.state.open(journal_writes=self.options.persist)
        self.restored = self.state_report.restored
        self.secrets = local_secrets(self.state_dir)
        urls = self._start_gateway(endpoint)
        self._configure_handlers(urls)
        self._start_services()
        if self.state_report.found_tables:
            self.recovered = self._recover()
        self.urls = urls
        self._write_dev_file(urls)
        replayed = self.state_report.replayed
        logger.info(
            "local stack ready",
            extra={
                **urls.to_json(),
                "restoredItems": self.restored.items if self.restored else 0,
                "journalRecords": replayed.records if replayed else 0,
                "seconds": round(time.perf_counter() - started, 2),
            },
        )
        return urls

    def _refuse_a_second_stack(self) -> None:
        """Two stacks on one state folder would overwrite each other's tables and dev.json."""
        if not self.dev_file.exists():
            return
        try:
            url = json.loads(self.dev_file.read_text())["httpUrl"]
            # A live stack generates its document on the first request, which takes more than
            # a second on a busy machine; a dead one refuses the connection at once.
            with urllib.request.urlopen(f"{url}/openapi.json", timeout=10):  # noqa: S310
                pass
        except (OSError, ValueError, KeyError):
            return  # left behind by a stack that did not stop cleanly
        raise StackAlreadyRunning(f"a local stack already runs at {url} (see {self.dev_file})")

    def _start_gateway(self, endpoint: str) -> StackUrls:
        self._executor = ThreadPoolExecutor(self.options.workers, thread_name_prefix="lambda")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="tether-gateway", daemon=True
        )
        self._loop_thread.start()
        self.gateway = Gateway(
            GatewayHandlers.real(),
            self._executor,
            credentials=local_credentials(),
            limits=self.options.limits,
            routes=console_routes(self._console_helpers()),
            cors=CorsPolicy(self.options.cors_origins) if self.options.cors_origins else None,
        )
        self._runner = web.AppRunner(self.gateway.app, handle_signals=False, access_log=None)
        self._call(self._runner.setup())
        self._site = web.TCPSite(self._runner, self.options.host, self.options.http_port)
        self._call(self._site.start())
        host, port = self._runner.addresses[0][:2]
        self._expiry = asyncio.run_coroutine_threadsafe(self._expire_connections(), self._loop)
        base = f"http://{host}:{port}"
        return StackUrls(
            http_url=base,
            ws_url=f"ws://{host}:{port}{WS_PATH}",
            management_url=base,  # boto3 appends /@connections/{id}
            aws_endpoint=endpoint,
        )

    def _console_helpers(self) -> ConsoleHelpers:
        def dev_token() -> str:
            assert self.secrets is not None
            return mint_dev_token(
                self.secrets.user_token_secret,
                tenant=DEV_TENANT,
                subject="dev",
                scopes=list(Scope),
                ttl=DEV_TOKEN_TTL,
                clock=SystemClock(),
            )

        def sample_csv(rows: int) -> SampleObject:
            name = f"samples/contacts-{rows}-{secrets.token_hex(4)}.csv"
            key = tenant_import_prefix(DEV_TENANT) + name
            return put_sample_csv(self.aws.client("s3"), rows, key)

        def deliveries() -> list[dict[str, Any]]:
            sink = self.push_sink.sink
            return [
                {**d.summary(), "messageId": d.message_id, "payload": d.payload}
                for d in sink.deliveries()
            ]

        return ConsoleHelpers(dev_token=dev_token, deliveries=deliveries, sample_csv=sample_csv)

    def outage(self, seconds: float) -> None:
        """The gateway stops listening and drops every socket for `seconds`, then listens again
        on the same port: a network outage as clients see it (the browser tests use it)."""
        assert self._runner is not None
        assert self._site is not None
        assert self.gateway is not None
        host, port = self._runner.addresses[0][:2]
        self._call(self._site.stop())
        self._call(self.gateway.close_connections())
        time.sleep(seconds)
        self._site = web.TCPSite(self._runner, host, port)
        self._call(self._site.start())

    def _configure_handlers(self, urls: StackUrls) -> None:
        """The handlers' environment, as the CDK app sets it in the cloud; then a cold start."""
        assert self.secrets is not None
        environment = {spec.env_var: self.tables[spec.key] for spec in TABLES}
        environment.update(
            {
                c.ENV_AWS_ENDPOINT_URL: urls.aws_endpoint,
                c.ENV_CURSOR_SECRET: self.secrets.cursor_secret,
                c.ENV_AUTH_HS256_SECRET: self.secrets.user_token_secret,
                c.ENV_RESUME_SIGNING_KEY: self.secrets.resume_signing_key,
                c.ENV_WEBSOCKET_MANAGEMENT_URL: urls.management_url,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
                c.ENV_IMPORT_BUCKET: IMPORT_BUCKET,
                **self.options.environment,
            }
        )
        push_applications = create_platform_applications(self.aws.client("sns"))
        os.environ.update({**platform_environment(push_applications), **environment})
        local_sfn.install(wait_scale=self.options.wait_scale)
        os.environ[c.ENV_STATE_MACHINE_ARN] = local_sfn.deploy_job_runner(
            lambda_client=self.aws.client("lambda"),
            iam_client=self.aws.client("iam"),
            sfn_client=self.aws.client("stepfunctions"),
            handlers=_one_event_at_a_time(local_sfn.runner_handlers(), "tether-job-runner-"),
        )
        self._configured = True
        mark_management_calls()  # before the handlers' clients exist (see `connections`)
        cold_start()

    def _start_services(self) -> None:
        from functions import dispatcher

        streams = self.aws.client(
            "dynamodbstreams", config=Config(account_id_endpoint_mode="disabled")
        )
        described = self.aws.dynamodb().describe_table(TableName=self.tables["messages"])
        self.poller = StreamPoller(
            streams,
            described["Table"]["LatestStreamArn"],
            LocalFunction("tether-dispatcher", dispatcher.handler),
            self.options.poller,
            wakeup=moto_patches.stream_activity(),
        )
        built_in: list[BackgroundService] = [
            PollerService(self.poller),
            self.push_sink,
            TickerService(self._ticker()),
        ]
        if self.options.persist:
            built_in.append(SnapshotService(self._save, self.options.snapshot_every_seconds))
        self.services[:0] = built_in
        for service in self.services:
            service.start()
            logger.info("service started", extra={"backgroundService": service.name})

    def _ticker(self) -> Ticker:
        """Fires due schedules through the launcher, and the hourly cleanup (moto fires none)."""
        from functions import cleanup, launcher

        return Ticker(
            scheduler=self.aws.client("scheduler"),
            group=os.environ.get(c.ENV_SCHEDULER_GROUP, c.DEFAULT_SCHEDULER_GROUP),
            launch=LocalFunction("tether-launcher", launcher.handler),
            cleanup=LocalFunction("tether-cleanup", cleanup.handler),
            clock=SystemClock(),
            period_seconds=self.options.tick_seconds,
        )

    def _recover(self) -> recovery.Recovered:
        from functions import runner

        found = recovery.recover(
            self.aws.table_items,
            self.tables,
            runner=runner.context().runner,
            scheduler=scheduler_gateway(load_settings()),
        )
        recovered = dataclasses.replace(
            found,
            items_skipped=found.items_skipped + len(self.state_report.skipped),
            epochs_started=self.state_report.epochs_started,
        )
        logger.info(
            "executions and schedules rebuilt",
            extra={
                "jobsRelaunched": recovered.jobs_relaunched,
                "schedulesRestored": recovered.schedules_restored,
                "itemsSkipped": recovered.items_skipped,
                "epochsStarted": recovered.epochs_started,
            },
        )
        return recovered

    def _write_dev_file(self, urls: StackUrls) -> None:
        partial = self.dev_file.with_suffix(".partial")
        partial.write_text(json.dumps(urls.to_json(), indent=2) + "\n")
        partial.replace(self.dev_file)
        self._owns_dev_file = True

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything that started, in reverse; safe to call twice or after a failed start."""
        if self._owns_dev_file:  # never another running stack's
            self.dev_file.unlink(missing_ok=True)
            self._owns_dev_file = False
        if self._loop is not None and self._runner is not None:
            if self._expiry is not None:
                self._expiry.cancel()
            # Closes every socket first; each close runs $disconnect against the live tables.
            with contextlib.suppress(Exception):
                self._call(self._runner.cleanup(), timeout=30)
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                service.stop()
        built_in = (PollerService, SnapshotService, PushSinkService, TickerService)
        self.services = [s for s in self.services if not isinstance(s, built_in)]
        if self.urls is not None:
            self._stop_executions()
            if self.options.persist:
                self._save()
            with contextlib.suppress(Exception):
                self.aws.configure({"stepfunctions": {"execute_state_machine": False}})
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            self._loop.close()
            self._loop = self._loop_thread = self._runner = self._site = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self.aws.stop()
        if self.state is not None:  # after the last write moto could take
            self.state.close()
            self.state = None
        self.urls = None
        if self._configured:
            cold_start(warm=False)
            self._configured = False
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
        global _running
        with _running_lock:
            if _running is self:
                _running = None

    def _save(self) -> None:
        assert self.state is not None
        self.saved = self.state.save()
        logger.info(
            "tables saved",
            extra={"items": self.saved.items, "seconds": round(self.saved.seconds, 2)},
        )

    def _stop_executions(self) -> None:
        """Running executions would go on calling handlers after the stack is gone."""
        sfn = self.aws.client("stepfunctions")
        arn = os.environ.get(c.ENV_STATE_MACHINE_ARN)
        if not arn:
            return
        with contextlib.suppress(Exception):
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=arn, statusFilter="RUNNING"
            )
            for page in pages:
                for execution in page["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"])

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, coroutine: Any, timeout: float = 30) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _expire_connections(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_CHECK_SECONDS)
            if self.gateway is not None:
                await self.gateway.expire_connections()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _one_event_at_a_time(
    handlers: Mapping[str, local_sfn.TaskHandler], prefix: str
) -> dict[str, local_sfn.TaskHandler]:
    """Each JobRunner task is its own function, with its own environment, as in the cloud."""
    return {
        step: LocalFunction(prefix + step.replace("_", "-"), handler)
        for step, handler in handlers.items()
    }


def cold_start(*, warm: bool = True) -> None:
    """Forget every handler's cached context, then (warm) build them from the environment now.

    Built now, while the stack's environment is set, they keep their settings even if a caller
    (a test's fixture) changes the environment later.
    """
    caches = handler_caches()
    for cache in caches:
        cache.cache_clear()
    if warm:
        for cache in caches:
            cache()
