"""Long-running processes (`hotline agi`, `listen`, `worker`, `scheduler`, `serve`) run and
stop the same way: their heap settled once started, and SIGTERM or SIGINT asks them to finish
what they hold and exit 0."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from hotline.app.config import LoggingSettings

log = logging.getLogger(__name__)

# Objects allocated (net) between two collections of the youngest generation (default 700). In
# a burst of 200 calls the listener makes hundreds of thousands of short-lived objects (AMI
# messages, rows); collecting every 700 of them took about 9% of its time, every 10,000 about
# 3% (bench/ami_ingest.py's listener, timed with gc.callbacks).
YOUNG_COLLECTION_THRESHOLD = 10_000
# How often the main thread looks for a signal received while it waits to stop.
SIGNAL_POLL_SECONDS = 0.2


def settle_heap() -> None:
    """Once a long-running process has started: what start-up allocated (modules, SQLAlchemy's
    metadata, settings) lives as long as the process, so it is frozen out of the collector's
    sight (a full collection walked all of it: 40-70 ms in the ingest bench), and the
    youngest generation is collected less often."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[str]]:
    """Inside, SIGTERM and SIGINT are listed in what this yields (``wait_for_stop`` then
    stops) instead of killing the process. Entered before anything starts: a SIGTERM during
    start-up (systemd stopping a unit that just started) then also ends in a clean stop, not a
    dead process."""
    received: list[str] = []

    def on_signal(number: int, _frame: FrameType | None) -> None:
        # Only a list append, no lock: a handler runs in the main thread between two of its
        # steps, maybe while that thread holds the lock inside ``stop`` (Event.wait), and
        # ``stop.set()`` here would then wait for that lock for ever (a server that never ended
        # on SIGTERM, seen in CI). ``wait_for_stop`` sees the signal and sets ``stop``.
        received.append(signal.Signals(number).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for_stop(stop: threading.Event, received: list[str]) -> str:
    """Block the main thread until a signal comes (``stop_on_signals``) or another thread sets
    ``stop``; ``stop`` is set on return, for every thread watching it. Returns why."""
    while not received and not stop.wait(timeout=SIGNAL_POLL_SECONDS):
        pass
    stop.set()
    reason = received[0] if received else "stop requested"
    log.info("stopping: %s", reason)
    return reason


class JsonLines(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines()
        if settings.format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
