"""Background services: what runs beside the local stack's gateway, started and stopped with it.

`LocalStack` starts the stream poller first, then the push sink, the ticker and the periodic
snapshot, then the services it was given (e.g. a later issue's), once the handlers' environment
is set; it stops them in reverse before it saves the tables. A service is anything with a
`name`, `start()` and `stop()`; `stop()` must return only when the service has stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools import Logger

from infra.local.poller import StreamPoller
from infra.local.push_sink import PushSink
from infra.local.ticker import Ticker

logger = Logger(service="tether-local")


class BackgroundService(Protocol):
    """Something that runs beside the stack (the stream poller; later the ticker, push sink)."""

    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class PollerService:
    """The stream poller as a background service; it keeps its checkpoint across restarts."""

    poller: StreamPoller
    name: str = "stream-poller"

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()


@dataclass
class SnapshotService:
    """Saves the tables every so often too, so a crash (kill -9, power) loses minutes at most."""

    save: Callable[[], None]
    every_seconds: float
    name: str = "snapshots"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tether-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                self.save()
            except Exception:
                logger.exception("periodic snapshot failed; the one on stop still runs")


@dataclass
class PushSinkService:
    """Logs every push the JobRunner sent (to moto's SNS) as one structured line."""

    sink: PushSink = field(default_factory=PushSink)
    name: str = "push-sink"

    def start(self) -> None:
        self.sink.start()

    def stop(self) -> None:
        self.sink.stop()


@dataclass
class TickerService:
    """Fires due EventBridge Scheduler schedules and the hourly cleanup rule (moto fires none)."""

    ticker: Ticker
    name: str = "ticker"

    def start(self) -> None:
        self.ticker.start()

    def stop(self) -> None:
        self.ticker.stop()
