"""Runners: where AMI messages come from (cacofonisk's split). Each feeds an ``AmiHandler``.

- ``listen``: a live, self-healing AMI connection (``hotline listen`` runs this).
- ``replay``: recorded server bytes (banner first), e.g. a fixture; no sockets, same framer.
"""

from __future__ import annotations

import threading
from datetime import datetime

from hotline.ami import AmiClient, AmiHandler, utc_now
from hotline.ami_protocol import ParseStats, iter_messages
from hotline.ami_settings import AmiSettings
from hotline.tracker import CallSink, CallTracker, TrackerRules


def listen(settings: AmiSettings, sink: CallSink, stop: threading.Event) -> CallTracker:
    """Track calls from a live AMI connection into ``sink`` until ``stop`` is set.

    Blocks; raises ``AmiLoginError`` at once on a refused login. Use ``build_client`` instead
    when another thread needs the tracker (live calls) or the client (Originate) meanwhile.
    """
    client, tracker = build_client(settings, sink)
    client.run(stop)
    return tracker


def build_client(settings: AmiSettings, sink: CallSink) -> tuple[AmiClient, CallTracker]:
    tracker = CallTracker(
        sink, TrackerRules.from_settings(settings), max_live_calls=settings.max_live_calls
    )
    return AmiClient(settings, tracker), tracker


def replay(data: bytes, handler: AmiHandler, *, received_at: datetime | None = None) -> ParseStats:
    """Feed every message of a recorded server stream to ``handler``; returns the parse tally."""
    stats = ParseStats()
    at = received_at or utc_now()
    for message in iter_messages(data, expect_banner=True, stats=stats):
        handler.on_event(message, at)
    return stats
