"""What `tether watch` draws: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from infra.client.render import CLEAR_LINE, WatchRenderer, bar
from infra.client.updates import Finished, JobView, Progress, Reconnecting
from shared.domain.models import Counters, JobStatus


def view(processed: int, status: JobStatus = JobStatus.RUNNING) -> JobView:
    counters = Counters(total=10, processed=processed, succeeded=processed)
    return JobView(job_id="j1", status=status, counters=counters, seq=processed, epoch="e1")


def test_bar_fills_with_the_percentage() -> None:
    assert bar(0.0, width=10) == "[..........]"
    assert bar(45.0, width=10) == "[####......]"
    assert bar(100.0, width=10) == "[##########]"
    assert bar(140.0, width=10) == "[##########]"


def test_on_a_terminal_progress_redraws_one_line_and_events_print_above_it() -> None:
    out = io.StringIO()
    renderer = WatchRenderer(out, live=True)

    renderer.show(Progress(view(3), seq=3))
    renderer.show(
        Reconnecting(view(3), attempt=1, attempts=5, wait=1.0, reason="closed by the server")
    )
    renderer.show(Progress(view(10), seq=4))
    renderer.show(Finished(view(10, JobStatus.COMPLETED)))

    drawn = out.getvalue()
    expected_bar = f"{CLEAR_LINE}{bar(30.0)}  30.0%  processed 3/10"
    assert drawn.startswith(expected_bar)
    assert (
        f"{CLEAR_LINE}connection lost (closed by the server); reconnecting in 1 s (1/5)\n" in drawn
    )
    assert drawn.endswith(
        f"{CLEAR_LINE}job j1 completed: 100.0%  processed 10/10  succeeded 10  failed 0  "
        "skipped 0\n"
    )


def test_off_a_terminal_every_update_is_one_plain_line() -> None:
    out = io.StringIO()
    renderer = WatchRenderer(out, live=False)

    renderer.show(Progress(view(3), seq=3))
    renderer.show(Finished(view(10, JobStatus.COMPLETED)))

    assert out.getvalue().splitlines() == [
        "progress  30.0%  processed 3/10  succeeded 3  failed 0  skipped 0  (seq 3)",
        "job j1 completed: 100.0%  processed 10/10  succeeded 10  failed 0  skipped 0",
    ]
    assert "\r" not in out.getvalue()
