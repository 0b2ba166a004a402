"""One simulated call's FastAGI dialogue, on a thread of its own.

The simulator's engine thread owns every call and must never block on a socket, so the
dialogue runs here and hands what happened to the call's script through a queue: each command
with its reply, then the end with the AGISTATUS the dialplan would see. While the queue is
empty the engine parks the script; ``wake`` tells it the queue has news.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hotline.simulator.agi_peer import SAFETY_TIMEOUT, AgiPeer, Caller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exchange:
    command: str
    reply: bytes


@dataclass(frozen=True)
class Ended:
    status: str  # AGISTATUS: SUCCESS, HANGUP (the caller hung up) or FAILURE (unreachable)


class AgiSession:
    def __init__(self, address: tuple[str, int], caller: Caller, wake: Callable[[], None]) -> None:
        self.peer = AgiPeer(address, caller, observe=self._observed)
        self._wake = wake
        self._news: queue.SimpleQueue[Exchange | Ended] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"sim-agi-{caller.uniqueid}", daemon=True
        )
        # created, connecting, talking (the server has sent a command), then the AGISTATUS it
        # ended with: read by the simulator's agi_sessions().
        self.state = "created"

    @property
    def request(self) -> str:
        return self.peer.request

    def start(self) -> None:
        self.state = "connecting"
        self._thread.start()

    def ready(self) -> bool:
        """Has news for the script (called on the engine thread)."""
        return not self._news.empty()

    def take(self) -> Exchange | Ended:
        return self._news.get_nowait()

    def stop(self) -> None:
        self.peer.close()
        if self._thread.is_alive():
            self._thread.join(SAFETY_TIMEOUT)

    def _observed(self, command: str, reply: bytes) -> None:
        self.state = "talking"
        self._tell(Exchange(command, reply))

    def _tell(self, news: Exchange | Ended) -> None:
        self._news.put(news)
        self._wake()

    def _run(self) -> None:
        status = "FAILURE"
        try:
            self.peer.run()
            status = "HANGUP" if self.peer.dead else "SUCCESS"
        except OSError as exc:
            # As Asterisk does: the dialplan goes on with AGISTATUS=FAILURE (to an agent).
            log.warning("FastAGI %s, call %s: %s", self.request, self.peer.caller.uniqueid, exc)
        finally:
            self.state = status
            # Always said, so the call's script never waits for ever.
            self._tell(Ended(status))
