"""`tether`: the command line of the local stack (and, as issues land, of the client).

Today it runs what exists: `tether dev` starts the local AWS (moto server mode) with Tether's
tables, proves the job store works against it with a short demo job, prints a dev token and
serves until Ctrl-C; `tether token` mints user tokens the local stack accepts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from infra.local.aws import LOCAL_CREDENTIALS, LOCAL_REGION, LocalAws
from infra.local.secrets import DEFAULT_STATE_DIR, LocalSecrets, local_secrets
from shared import constants as c
from shared.domain.auth import Scope
from shared.domain.clock import SystemClock
from shared.domain.models import JobRequest, ProgressDelta
from shared.services.auth import mint_dev_token
from shared.services.jobs import JobRef
from shared.settings import TetherSettings
from shared.tables import TABLES
from shared.wiring import job_service

DEFAULT_PORT = 4566
TABLE_PREFIX = "tether"


def _settings(endpoint: str, tables: dict[str, str], keys: LocalSecrets) -> TetherSettings:
    environment = {spec.env_var: tables[spec.key] for spec in TABLES}
    environment[c.ENV_CURSOR_SECRET] = keys.cursor_secret
    environment[c.ENV_AWS_ENDPOINT_URL] = endpoint
    return TetherSettings.model_validate(environment)


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


def _demo(settings: TetherSettings) -> None:
    """Run one small job through the real store and print its message log."""
    service = job_service(settings, clock=None)
    job = service.create_job(
        JobRequest(type="demo", params={"items": 3}), tenant_id="local", owner_id="dev"
    )
    ref = JobRef(job.tenant_id, job.job_id)
    service.start(ref, total=3)
    for _ in range(3):
        service.report_progress(ref, ProgressDelta(succeeded=1))
    service.complete(ref, {"processed": 3})
    print(f"self-check: demo job {job.job_id} ran; its message log:")
    for message in service.messages_after(ref, 0).messages:
        print(f"  {message.to_json()}")


def dev(args: argparse.Namespace) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])
    aws = LocalAws(port=args.port).start()
    tables = aws.create_tables(TABLE_PREFIX)
    keys = local_secrets(Path(args.state_dir))
    settings = _settings(aws.endpoint_url, tables, keys)
    print(f"local AWS (moto) at {aws.endpoint_url}; tables: {', '.join(sorted(tables.values()))}")
    print("Not yet running: HTTP API, WebSocket gateway, JobRunner (see README).")
    _demo(settings)
    dev_token = _dev_token(keys, "local", "dev", [s.value for s in Scope], 12 * 3600)
    print(f"dev token (tenant local, user dev, 12 h; `tether token` mints more):\n  {dev_token}")
    if args.once:
        aws.stop()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("serving; Ctrl-C stops")
    stop.wait()
    aws.stop()
    print("stopped")
    return 0


def replay_events(args: argparse.Namespace) -> int:
    from infra.local.replay import printable, replay  # moto and every handler: import on use

    results = replay([Path(name) for name in args.events])
    for result in results:
        print(f"== {result.path} -> {result.handler}")
        print(json.dumps(printable(result.answer), indent=2, default=str))
        for connection_id, frames in result.posted.items():
            print(f"-- frames posted to connection {connection_id}:")
            for frame in frames:
                print(f"   {json.dumps(frame)}")
        for push in result.pushed:
            print(f"-- push that would have reached {push['platform']}: {json.dumps(push)}")
    return 0 if all(result.ok for result in results) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether", description="Tether: keep clients tethered to long-running server jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev_parser = commands.add_parser("dev", help="run Tether locally (no AWS account, no Docker)")
    dev_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="local AWS port")
    dev_parser.add_argument("--once", action="store_true", help="self-check, then exit")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "scope", None) is None and args.command == "token":
        args.scope = [s.value for s in Scope]
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
