"""Long-running processes (`hotline agi`, `listen`, `worker`, `scheduler`, `serve`) stop the
same way: SIGTERM or SIGINT asks them to finish what they hold and exit 0."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

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


def configure_logging(level: str = "INFO") -> None:
    """One line per event, with time, level and source: readable by people and journald."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
