"""How `tether watch` and `tether jobs` show things: a live bar on a terminal, lines elsewhere.

On a TTY the progress bar and counters are redrawn in place and events (status changes,
reconnects, resyncs) print above it; piped into a file or another program every update is one
plain line, so logs and tests read the same story.
"""

from __future__ import annotations

from typing import Final, TextIO

from infra.client.updates import (
    Finished,
    GaveUp,
    JobGone,
    JobView,
    Progress,
    Reconnecting,
    Resynced,
    ServerError,
    StatusChanged,
    Subscribed,
    WatchUpdate,
)
from shared.domain.models import Counters, JobState

BAR_WIDTH: Final = 30
CLEAR_LINE: Final = "\r\033[K"


def counters_line(counters: Counters) -> str:
    return (
        f"{counters.percent:5.1f}%  processed {counters.processed}/{counters.total}  "
        f"succeeded {counters.succeeded}  failed {counters.failed}  skipped {counters.skipped}"
    )


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    filled = round(width * min(max(percent, 0.0), 100.0) / 100)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def describe(update: WatchUpdate) -> str | None:
    """One line for an update; None for updates the bar alone shows."""
    view = update.view
    match update:
        case Subscribed(recovered=True, replayed=replayed, head=head):
            return f"subscribed to {view.job_id}: log at seq {head}, {replayed} replayed"
        case Subscribed():
            return f"subscribed to {view.job_id}: the log cannot fill the gap, resyncing"
        case Progress(seq=seq):
            return f"progress {counters_line(view.counters)}  (seq {seq})"
        case StatusChanged(seq=seq, status=status):
            return f"status {status}  (seq {seq})"
        case Resynced():
            return f"resynced over HTTP: status {view.status}, seq {view.seq}"
        case Reconnecting(attempt=attempt, attempts=attempts, wait=wait, reason=reason):
            return f"connection lost ({reason}); reconnecting in {wait:g} s ({attempt}/{attempts})"
        case ServerError(code=code, message=message):
            return f"server error {code}: {message}"
        case Finished():
            return _finished(view)
        case JobGone():
            return f"job {view.job_id} is gone (deleted, expired, or not yours)"
        case GaveUp(reason=reason):
            return f"stopped watching {view.job_id}: {reason}"
    return None


def _finished(view: JobView) -> str:
    line = f"job {view.job_id} {view.status}: {counters_line(view.counters)}"
    if view.error is not None:
        line += f"\n  error {view.error.code}: {view.error.message}"
    return line


class WatchRenderer:
    """Draws a watch on `out`: in place on a TTY, one line per update otherwise."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self._out = out
        self._live = live
        self._bar_shown = False

    def show(self, update: WatchUpdate) -> None:
        if not self._live:
            line = describe(update)
            if line is not None:
                print(line, file=self._out, flush=True)
            return
        if not isinstance(update, Progress):
            line = describe(update)
            if line is not None:
                self._print_above(line)
        if not update.final:
            self._draw(update.view)

    def _print_above(self, line: str) -> None:
        if self._bar_shown:
            self._out.write(CLEAR_LINE)
            self._bar_shown = False
        print(line, file=self._out, flush=True)

    def _draw(self, view: JobView) -> None:
        status = view.status or "…"
        self._out.write(f"{CLEAR_LINE}{bar(view.percent)} {counters_line(view.counters)}  {status}")
        self._out.flush()
        self._bar_shown = True


def job_summary(state: JobState) -> str:
    """`tether jobs get`: the state a human wants first."""
    lines = [
        f"job {state.job_id}  type {state.type}  status {state.status}  priority {state.priority}",
        f"progress {counters_line(state.counters)}",
        f"log seq {state.seq}  epoch {state.epoch}  created {state.created_at.isoformat()}",
    ]
    if state.cancel_requested or state.pause_requested:
        requested = [
            name
            for name, wanted in (
                ("cancel", state.cancel_requested),
                ("pause", state.pause_requested),
            )
            if wanted
        ]
        lines.append(f"requested: {', '.join(requested)}")
    if state.error is not None:
        lines.append(f"error {state.error.code}: {state.error.message}")
    if state.result is not None:
        lines.append(f"result {state.result}")
    return "\n".join(lines)


def job_row(state: JobState) -> str:
    return (
        f"{state.job_id:<28} {state.type:<12} {state.status:<10} {state.priority:<7} "
        f"{state.counters.percent:5.1f}%  {state.counters.processed}/{state.counters.total}"
    )


JOB_TABLE_HEADER: Final = f"{'JOB':<28} {'TYPE':<12} {'STATUS':<10} {'PRIO':<7} PROGRESS"
