"""`tether`: the command line of the local stack (and, as issues land, of the client).

`tether dev` runs the whole system locally (`infra.local.stack.LocalStack`: moto, the JobRunner,
the HTTP/WebSocket gateway, the stream poller), prints its URLs and a dev token and serves until
Ctrl-C; `tether token` mints user tokens the local stack accepts.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from infra.client.commands import add_client_commands
from infra.local.secrets import DEFAULT_STATE_DIR, LocalSecrets, local_secrets
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.services.auth import mint_dev_token

if TYPE_CHECKING:
    from infra.local.stack import LocalStack

DEFAULT_PORT = 8787


def _dev_token(keys: LocalSecrets, tenant: str, user: str, scopes: list[str], ttl: int) -> str:
    return mint_dev_token(
        keys.user_token_secret,
        tenant=tenant,
        subject=user,
        scopes=[Scope(scope) for scope in scopes],
        ttl=timedelta(seconds=ttl),
        clock=SystemClock(),
    )


def token(args: argparse.Namespace) -> int:
    keys = local_secrets(Path(args.state_dir))
    print(_dev_token(keys, args.tenant, args.user, args.scope, args.ttl))
    return 0


def dev(args: argparse.Namespace) -> int:
    from infra.local.stack import (  # moto, aiohttp: import on use
        LocalStack,
        StackAlreadyRunning,
        StackOptions,
    )

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    options = StackOptions(
        host=args.host,
        http_port=args.port,
        aws_port=args.aws_port,
        fresh=args.fresh,
        cors_origins=tuple(args.cors_origin or ()),
    )
    stack = LocalStack(Path(args.state_dir), options)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    started = time.perf_counter()
    try:
        try:
            urls = stack.start()
        except StackAlreadyRunning as running:
            print(f"tether dev: {running}; stop it first, or pass another --state-dir")
            return 1
        except OSError as refused:  # e.g. the port is taken
            print(f"tether dev: cannot listen on {args.host}:{args.port}: {refused.strerror}")
            return 1
        ready = time.perf_counter() - started
        assert stack.secrets is not None
        dev_token = _dev_token(stack.secrets, "local", "dev", [s.value for s in Scope], 12 * 3600)
        kept = _restart_summary(stack) if stack.state_report.found_tables else "empty tables"
        print(
            f"""
Tether is running locally (ready in {ready:.1f} s; {kept}).
  HTTP API        {urls.http_url}   (OpenAPI: {urls.http_url}/openapi.json, docs: /docs)
  WebSocket       {urls.ws_url}   (?token=... or subprotocols tether.v2, bearer.<token>)
  @connections    {urls.management_url}/@connections/{{id}}
  local AWS       {urls.aws_endpoint}   (moto: DynamoDB, Step Functions JobRunner)
  push            to moto's SNS; each push is logged as "push delivered"
  schedules       fired by the local ticker (every second), cleanup hourly
  console         {urls.console_url}   ("use local dev token" signs in)
  written to      {stack.dev_file}
dev token (tenant local, user dev, 12 h; `tether token` mints more):
  {dev_token}
Ctrl-C stops (the tables are saved; `--fresh` starts empty).""",
            flush=True,
        )
        if args.once:
            stop.set()
        stop.wait()
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    saved = f"{stack.saved.items} items saved to {stack.saved.path}" if stack.saved else "nothing"
    print(f"stopped; {saved}", flush=True)
    return 0


def _restart_summary(stack: LocalStack) -> str:
    report, recovered = stack.state_report, stack.recovered
    restored = report.restored
    replayed = report.replayed.records if report.replayed else 0
    parts = [
        f"{restored.items} items restored from {restored.path}" if restored else "no snapshot",
        f"{replayed} journal records replayed",
        f"{recovered.jobs_relaunched} unfinished jobs relaunched",
        f"{recovered.schedules_restored} schedules restored",
    ]
    if report.unclean_stop:
        parts.append("the last run did not stop cleanly")
    if recovered.epochs_started:
        parts.append(f"{recovered.epochs_started} jobs given a new epoch")
    if recovered.items_skipped:
        parts.append(f"{recovered.items_skipped} unreadable items skipped (see the log)")
    return ", ".join(parts)


def replay_events(args: argparse.Namespace) -> int:
    from infra.local.replay import printable, replay  # moto and every handler: import on use

    results = replay([Path(name) for name in args.events])
    for result in results:
        print(f"== {result.path} -> {result.handler or 'no handler'}: {result.outcome}")
        if result.handler is None:
            continue
        print(json.dumps(printable(result.answer), indent=2, default=str))
        for connection_id, frames in result.posted.items():
            print(f"-- frames posted to connection {connection_id}:")
            for frame in frames:
                print(f"   {json.dumps(frame)}")
        for push in result.pushed:
            print(f"-- push that would have reached {push['platform']}: {json.dumps(push)}")
        for execution in result.started:
            print(f"-- JobRunner execution started (not run): {json.dumps(execution)}")
    replayed = sum(result.ok for result in results)
    print(f"{replayed} of {len(results)} events handled or refused cleanly", flush=True)
    return 0 if replayed == len(results) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether", description="Tether: keep clients tethered to long-running server jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev_parser = commands.add_parser("dev", help="run Tether locally (no AWS account, no Docker)")
    dev_parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP and WebSocket port (0: any free)"
    )
    dev_parser.add_argument(
        "--aws-port", type=int, default=0, help="local AWS (moto) port (default: any free)"
    )
    dev_parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dev_parser.add_argument(
        "--fresh", action="store_true", help="start empty, forgetting the saved tables"
    )
    dev_parser.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="let a page at ORIGIN (e.g. http://localhost:5173) call the HTTP API; repeatable",
    )
    dev_parser.add_argument("--once", action="store_true", help="start, print, stop (a check)")
    dev_parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="local state")
    dev_parser.set_defaults(run=dev)

    token_parser = commands.add_parser(
        "token", help="mint a user token the local stack accepts (HS256, local secret)"
    )
    token_parser.add_argument("--tenant", default="local", help="tenant claim")
    token_parser.add_argument("--user", default="dev", help="subject (sub claim)")
    token_parser.add_argument(
        "--scope",
        action="append",
        choices=[s.value for s in Scope],
        help="repeat for several (default: all)",
    )
    token_parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token_parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="local state")
    token_parser.set_defaults(run=token)

    replay_parser = commands.add_parser(
        "replay",
        help="run sample events (events/*.json) through the real handlers against moto",
    )
    replay_parser.add_argument("events", nargs="+", help="event files, e.g. events/*.json")
    replay_parser.set_defaults(run=replay_events)
    add_client_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "scope", None) is None and args.command == "token":
        args.scope = [s.value for s in Scope]
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
