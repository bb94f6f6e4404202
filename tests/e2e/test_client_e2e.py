"""The Python client (`tether watch`'s engine) against the whole local stack, socket cut mid-run.

The raw-protocol tests in test_local_stack.py pin the wire contract; this one proves the
client keeps it: a 500-item job watched from creation to `completed`, the client's TCP
connection cut while the job runs on, the client reconnecting with backoff and `since`, and in
the end every seq of the log seen exactly once and the exact final counters.
"""

from __future__ import annotations

import asyncio
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from infra.cli import main
from infra.client.api import TetherApi
from infra.client.policy import Backoff, WatchPolicy
from infra.client.tokens import FileTokenStore
from infra.client.updates import (
    Finished,
    Progress,
    Reconnecting,
    StatusChanged,
    Subscribed,
    WatchUpdate,
)
from infra.client.watcher import TetherClient
from infra.local.stack import LocalStack
from shared.domain.models import Counters, JobRequest, JobStatus
from tests.e2e.conftest import TokenFactory

ITEMS = 500


@dataclass
class BackoffWhileTheJobMovesOn:
    """The client's injected sleep: records the backoff, returns once the job logged 3 more.

    So the reconnect always has missed messages to replay, however fast or slow the machine.
    """

    api: TetherApi | None = None
    job_id: str = ""
    cut_at: int = 0
    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        assert self.api is not None
        deadline = time.monotonic() + 20
        while (await self.api.get_job(self.job_id)).seq < self.cut_at + 3:
            assert time.monotonic() < deadline, "the job stopped moving"
            await asyncio.sleep(0.05)


def test_the_client_watches_500_items_through_a_cut_socket_seeing_every_seq_once(
    stack: LocalStack, token: TokenFactory, tmp_path: Path
) -> None:
    assert stack.urls is not None
    urls = stack.urls
    tokens = FileTokenStore(tmp_path)
    backoff = BackoffWhileTheJobMovesOn()
    updates: list[WatchUpdate] = []

    async def scenario() -> tuple[str, str, int]:
        async with TetherClient(
            http_url=urls.http_url,
            ws_url=urls.ws_url,
            token=token(),
            tokens=tokens,
            policy=WatchPolicy(reconnect=Backoff(initial=0.2)),
            sleep=backoff,
        ) as client:
            # Given a 500-item demo job created through the client (its resume token kept)
            request = JobRequest(type="demo", params={"items": ITEMS, "delayMs": 8})
            created = await client.create_job(request)
            backoff.api, backoff.job_id = client.api, created.job.job_id

            # When it is watched, and its TCP connection is cut once 60 items are done
            async for update in client.watch(created.job.job_id):
                updates.append(update)
                cut_now = isinstance(update, Progress) and update.view.counters.processed >= 60
                if cut_now and not backoff.cut_at:
                    assert client.drop_connection()
                    backoff.cut_at = update.view.seq
            head = (await client.api.get_job(created.job.job_id)).seq
            return created.job.job_id, created.resume_token, head

    job_id, resume_token, head = asyncio.run(asyncio.wait_for(scenario(), 90))

    # Then the client ended completed, with the exact counters
    final = updates[-1]
    assert isinstance(final, Finished)
    assert final.view.status is JobStatus.COMPLETED
    assert final.view.counters == Counters(total=ITEMS, processed=ITEMS, succeeded=ITEMS)
    # And it saw every seq of the log exactly once, in order, across the cut
    shown = [u.seq for u in updates if isinstance(u, Progress | StatusChanged)]
    assert shown == list(range(1, head + 1))
    assert 0 < backoff.cut_at < head - 3
    # And it reconnected once, after the first backoff, resuming from where it was cut with
    # the missed messages replayed
    assert [u.attempt for u in updates if isinstance(u, Reconnecting)] == [1]
    assert backoff.waits == [0.2]
    subscribed = [u for u in updates if isinstance(u, Subscribed)]
    assert [s.recovered for s in subscribed] == [True, True]
    assert subscribed[1].view.seq == backoff.cut_at
    assert subscribed[1].replayed >= 3
    # And the counters never went backwards, and the job's resume token is the one kept
    processed = [u.view.counters.processed for u in updates]
    assert processed == sorted(processed)
    assert tokens.get(job_id) == resume_token


def test_the_cli_finds_the_stack_by_its_dev_file_and_watches_a_job_to_the_end(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only what `tether dev` leaves in its state folder (dev.json, the local secrets),
    # and no keyring (tokens go to the 0600 file there)
    monkeypatch.setattr(keyring, "get_keyring", keyring.backends.fail.Keyring)
    state = ["--state-dir", str(stack.state_dir)]

    # When a job is created and watched with no connection flag
    created = main(["jobs", "create", "demo", "--items", "60", *state])
    job_id = _printed(capsys)[0].split()[1]
    watched = main(["watch", job_id, *state])
    lines = _printed(capsys)
    listed = main(["jobs", "list", "--status", "completed", *state])

    # Then the job was created, watched to completed over the stack's WebSocket and listed
    assert (created, watched, listed) == (0, 0, 0)
    assert lines[0].startswith(f"subscribed to {job_id}: log at seq ")
    assert lines[-1] == (
        f"job {job_id} completed: 100.0%  processed 60/60  succeeded 60  failed 0  skipped 0"
    )
    assert any(line.startswith(job_id) for line in _printed(capsys))
    assert stat.S_IMODE((stack.state_dir / "tokens.json").stat().st_mode) == 0o600


def _printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the CLI printed, without the stack's own JSON log lines (same process here)."""
    return [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
