"""`tether jobs …` and `tether watch`: the HTTP API and the WebSocket client from a terminal.

Each command resolves its endpoints and token (`infra.client.config`), runs one coroutine on
the client, prints for humans (or `--json`), and exits non-zero on a problem+json error with
its `title` and `detail`. `tether watch` exits with the job's outcome (see its --help).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from infra.client.api import ApiProblem
from infra.client.config import ConfigError, endpoints, user_token
from infra.client.policy import Backoff, WatchPolicy
from infra.client.render import JOB_TABLE_HEADER, WatchRenderer, job_row, job_summary
from infra.client.tokens import token_store
from infra.client.updates import Finished, GaveUp, JobGone, WatchUpdate
from infra.client.watcher import TetherClient
from infra.local.secrets import DEFAULT_STATE_DIR
from shared.domain.models import JobRequest, JobState, JobStatus, Priority, RetryPolicy

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_FAILED: Final = 3
EXIT_CANCELLED: Final = 4
EXIT_GONE: Final = 5
EXIT_GAVE_UP: Final = 6
EXIT_INTERRUPTED: Final = 130

WATCH_EPILOG: Final = """exit status: 0 completed, 3 failed, 4 cancelled, 5 job gone (404),
6 stopped watching (reconnects used up or refused), 1 any other error, 130 Ctrl-C.
The watch survives a dropped connection: it reconnects with backoff and resumes from the last
seq it showed (nothing missed, nothing twice)."""


# -- arguments ------------------------------------------------------------------------------


def _connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument("--http-url", help="HTTP API base URL (env TETHER_HTTP_URL)")
    group.add_argument("--ws-url", help="WebSocket URL (env TETHER_WS_URL)")
    group.add_argument(
        "--token",
        help="bearer token (env TETHER_TOKEN; default: minted for the local stack)",
    )
    group.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help="local state: the stack's dev.json and secrets, stored resume tokens",
    )


def _job_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("every job type")
    group.add_argument("--priority", choices=[p.value for p in Priority], default="normal")
    group.add_argument("--max-retries", type=int, help="retries of a failed batch (default 3)")
    group.add_argument(
        "--initial-backoff-ms", type=int, help="first wait before a retry (default 1000)"
    )
    group.add_argument("--timeout", type=int, metavar="S", help="fail the job after S seconds")
    group.add_argument("--idempotency-key", help="makes retrying this create safe")
    group.add_argument("--watch", action="store_true", help="watch the job once created")
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    _connection_options(parser)


def add_client_commands(commands: Any) -> None:
    """Register `jobs` and `watch` on the `tether` sub-command parser."""
    jobs = commands.add_parser("jobs", help="create, list, inspect and control jobs (HTTP API)")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a job (202 + a stored resume token)")
    types = create.add_subparsers(dest="job_type", required=True, metavar="TYPE")
    demo = types.add_parser(
        "demo", help="N numbered items, an optional delay and injected failures"
    )
    demo.add_argument("--items", type=int, required=True, metavar="N", help="how many items")
    demo.add_argument("--delay-ms", type=int, default=0, help="time spent per item")
    demo.add_argument(
        "--fail-at",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="item I fails for good, failing the job (repeatable)",
    )
    demo.add_argument(
        "--flaky-at",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="item I fails once, then succeeds on retry (repeat it to fail more tries)",
    )
    _job_options(demo)
    demo.set_defaults(run=_create)
    csv = types.add_parser("csv_import", help="import a CSV object from S3, row by row")
    csv.add_argument("--bucket", required=True, help="S3 bucket")
    csv.add_argument("--key", required=True, help="S3 object key")
    csv.add_argument("--delimiter", help="one character (default ,)")
    csv.add_argument("--max-errors", type=int, help="bad rows kept in the result (default 20)")
    _job_options(csv)
    csv.set_defaults(run=_create)

    listing = actions.add_parser("list", help="the tenant's jobs, newest first")
    listing.add_argument("--status", choices=[s.value for s in JobStatus])
    listing.add_argument("--type", dest="job_type", help="job type, e.g. demo")
    listing.add_argument("--limit", type=int, help="page size (1-100)")
    listing.add_argument("--cursor", help="nextCursor of the previous page")
    listing.add_argument("--json", action="store_true", help="print the API's JSON answer")
    _connection_options(listing)
    listing.set_defaults(run=_list)

    get = actions.add_parser("get", help="a job's full state (state sync)")
    get.add_argument("job_id", metavar="JOB")
    get.add_argument("--json", action="store_true", help="print the API's JSON answer")
    _connection_options(get)
    get.set_defaults(run=_get)

    for action, text in (
        ("cancel", "cancel a job (idempotent)"),
        ("pause", "pause a running job at its next batch"),
        ("resume", "resume a paused job"),
    ):
        control = actions.add_parser(action, help=text)
        control.add_argument("job_id", metavar="JOB")
        control.add_argument("--json", action="store_true", help="print the API's JSON answer")
        _connection_options(control)
        control.set_defaults(run=_control, action=action)

    delete = actions.add_parser("delete", help="delete a finished job and its messages")
    delete.add_argument("job_id", metavar="JOB")
    _connection_options(delete)
    delete.set_defaults(run=_delete)

    watch = commands.add_parser(
        "watch",
        help="follow a job live over the WebSocket until it ends",
        epilog=WATCH_EPILOG,
    )
    watch.add_argument("job_id", metavar="JOB")
    watch.add_argument("--since", type=int, default=0, help="start after this seq (default 0)")
    watch.add_argument("--attempts", type=int, default=5, help="reconnect tries (default 5)")
    watch.add_argument("--first-wait", type=float, default=1.0, help="first backoff, seconds")
    watch.add_argument("--max-wait", type=float, default=30.0, help="backoff cap, seconds")
    watch.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    _connection_options(watch)
    watch.set_defaults(run=watch_command)


# -- commands -------------------------------------------------------------------------------


def _run(args: argparse.Namespace, work: Callable[[TetherClient], Awaitable[int]]) -> int:
    """Resolve config, run `work` on a client, turn problems into messages and exit codes."""
    state_dir = Path(args.state_dir)
    try:
        urls = endpoints(state_dir, http_url=args.http_url, ws_url=args.ws_url)
        token = _caller_token(args, state_dir)
    except ConfigError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_ERROR
    client = TetherClient(
        http_url=urls.http_url,
        ws_url=urls.ws_url,
        token=token,
        tokens=token_store(state_dir),
        policy=getattr(args, "policy", None),
    )

    async def main() -> int:
        async with client:
            return await work(client)

    try:
        return asyncio.run(main())
    except ApiProblem as problem:
        detail = f": {problem.detail}" if problem.detail else ""
        print(f"error: {problem.title}{detail}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as invalid:
        print(f"error: invalid request: {invalid}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if sys.stdout.isatty():
            print()  # leave the progress line behind, not under the prompt
        return EXIT_INTERRUPTED


def _caller_token(args: argparse.Namespace, state_dir: Path) -> str | None:
    """The caller's token; `watch` can do without when the job's resume token is stored."""
    try:
        return user_token(state_dir, token=args.token)
    except ConfigError:
        stored = token_store(state_dir).get(args.job_id) if args.command == "watch" else None
        if stored is None:
            raise
        return None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def job_request(args: argparse.Namespace) -> JobRequest:
    """The POST /jobs body the `jobs create TYPE` flags describe."""
    params: dict[str, Any]
    if args.job_type == "demo":
        params = {"items": args.items}
        if args.delay_ms:
            params["delayMs"] = args.delay_ms
        if args.fail_at:
            params["permanentFailures"] = args.fail_at
        if args.flaky_at:
            params["transientFailures"] = args.flaky_at
    else:
        given = {
            "bucket": args.bucket,
            "key": args.key,
            "delimiter": args.delimiter,
            "maxErrors": args.max_errors,
        }
        params = {name: value for name, value in given.items() if value is not None}
    retry = {"maxRetries": args.max_retries, "initialBackoffMs": args.initial_backoff_ms}
    return JobRequest(
        type=args.job_type,
        params=params,
        priority=Priority(args.priority),
        retry=RetryPolicy.model_validate({k: v for k, v in retry.items() if v is not None}),
        timeout_seconds=args.timeout,
    )


def _create(args: argparse.Namespace) -> int:
    request = job_request(args)

    async def work(client: TetherClient) -> int:
        created = await client.create_job(request, idempotency_key=args.idempotency_key)
        job = created.job
        if args.json:
            _print_json(created.job.model_dump(mode="json"))
        else:
            print(f"created {job.job_id} ({job.type}, {job.status}, priority {job.priority})")
            where = client.tokens.where if client.tokens is not None else "nowhere"
            print(f"resume token stored in {where}")
            if not args.watch:
                print(f"watch it: tether watch {job.job_id}")
        if args.watch:
            return await _follow(client, job.job_id, since=0, plain=False)
        return EXIT_OK

    return _run(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work(client: TetherClient) -> int:
        page = await client.api.list_jobs(
            status=JobStatus(args.status) if args.status else None,
            job_type=args.job_type,
            limit=args.limit,
            cursor=args.cursor,
        )
        if args.json:
            _print_json(page.model_dump(mode="json"))
            return EXIT_OK
        print(JOB_TABLE_HEADER)
        for job in page.jobs:
            print(job_row(job))
        if page.next_cursor:
            print(f"more: tether jobs list --cursor {page.next_cursor}")
        return EXIT_OK

    return _run(args, work)


def _get(args: argparse.Namespace) -> int:
    async def work(client: TetherClient) -> int:
        return _show(args, await client.api.get_job(args.job_id))

    return _run(args, work)


def _control(args: argparse.Namespace) -> int:
    async def work(client: TetherClient) -> int:
        return _show(args, await client.api.control(args.job_id, args.action))

    return _run(args, work)


def _show(args: argparse.Namespace, state: JobState) -> int:
    """A job's state as JSON (`--json`) or one summary line."""
    if args.json:
        _print_json(state.model_dump(mode="json"))
    else:
        print(job_summary(state))
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    async def work(client: TetherClient) -> int:
        await client.api.delete_job(args.job_id)
        if client.tokens is not None:
            client.tokens.delete(args.job_id)
        print(f"deleted {args.job_id}")
        return EXIT_OK

    return _run(args, work)


def watch_command(args: argparse.Namespace) -> int:
    backoff = Backoff(initial=args.first_wait, cap=args.max_wait, attempts=args.attempts)
    args.policy = WatchPolicy(reconnect=backoff)

    async def work(client: TetherClient) -> int:
        return await _follow(client, args.job_id, since=args.since, plain=args.plain)

    return _run(args, work)


async def _follow(client: TetherClient, job_id: str, *, since: int, plain: bool) -> int:
    renderer = WatchRenderer(sys.stdout, live=sys.stdout.isatty() and not plain)
    last: WatchUpdate | None = None
    async for update in client.watch(job_id, since=since):
        renderer.show(update)
        last = update
    return outcome_code(last)


def outcome_code(last: WatchUpdate | None) -> int:
    match last:
        case Finished(view=view) if view.status is JobStatus.COMPLETED:
            return EXIT_OK
        case Finished(view=view) if view.status is JobStatus.CANCELLED:
            return EXIT_CANCELLED
        case Finished():
            return EXIT_FAILED
        case JobGone():
            return EXIT_GONE
        case GaveUp():
            return EXIT_GAVE_UP
    return EXIT_ERROR
