"""Long-running processes (`hotline agi`, `listen`, `worker`, `scheduler`, `serve`) stop the
same way: SIGTERM or SIGINT asks them to finish what they hold and exit 0."""

from __future__ import annotations

import json
import logging
import signal
import threading
from types import FrameType

from hotline.config import LoggingSettings

log = logging.getLogger(__name__)

# How often a running component reports; three missed reports mark it silent in `hotline status`.
HEARTBEAT_SECONDS = 5.0


def wait_for_stop_signal(stop: threading.Event | None = None) -> str:
    """Block the main thread until SIGTERM or SIGINT (or ``stop`` is set); return which."""
    stopping = stop or threading.Event()
    received: list[str] = []

    def on_signal(number: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(number).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.wait(timeout=1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
