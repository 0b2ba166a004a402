"""What the keypad-number question (issue 19) costs the IVR itself: the time from the caller's
last key to the next sound the IVR asks Asterisk to play, through the real FastAGI server and
the real casebook on SQLite, answered by the PBX simulator's Asterisk end (no audio: only the
IVR's own work is timed, never the caller's).

Three paths, alternating call by call so all see the same machine:

- baseline: today's flow without the question: the message's # -> the "registered" prompt;
- keyed:    the account number's # -> the prompt that says it back (the case registered first);
- skipped:  the question's timeout -> the "registered" prompt.

Prints p50/p95 of each in milliseconds and the ratios to the baseline.

    .venv/bin/python bench/ivr_keypad.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebook.db import Database
from hotline.app.config import Settings
from hotline.app.operator import create_site_keys
from hotline.simulator.agi_peer import AgiPeer, Caller, Take
from hotline.simulator.audio import caller_voice
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.flow import Flow, RecordComplaintNode, load_flow
from ivr_flows.server import AgiServer

VOICE = caller_voice(None)


def without_question(flow: Flow) -> Flow:
    node = flow.nodes["new_complaint"]
    assert isinstance(node, RecordComplaintNode)
    nodes = dict(flow.nodes) | {"new_complaint": node.model_copy(update={"keypad_number": None})}
    return flow.model_copy(update={"nodes": nodes})


def one_call(server: AgiServer, uniqueid: str, keys: list[str], after: str, until: str) -> float:
    """Seconds from the reply to the command starting ``after`` to the command ``until``."""
    marks: dict[str, float] = {}

    def observe(command: str, _reply: bytes) -> None:
        now = time.perf_counter()
        if command.startswith(after) and "after" not in marks:
            marks["after"] = now
        elif command.startswith(until) and "after" in marks and "until" not in marks:
            marks["until"] = now

    caller = Caller(uniqueid=uniqueid, linkedid=uniqueid, keys=keys, takes=[Take("dtmf", VOICE)])
    AgiPeer(server.address, caller, observe=observe).run()
    return marks["until"] - marks["after"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="calls per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-keypad-") as folder:
        settings = Settings()
        settings.database.url = f"sqlite:///{folder}/hotline.db"
        settings.recordings.root = Path(folder) / "recordings"
        settings.secrets.folder = Path(folder) / "secrets"
        settings.agi.host = "127.0.0.1"
        create_site_keys(settings)
        db = Database(settings.database, create=True)
        backend = CasebookBackend(db, settings)
        flow = load_flow()
        registered = "STREAM FILE hotline/registered"
        asked = "GET DATA hotline/enter_account"
        said_back = "STREAM FILE hotline/account_confirm"
        paths = {
            "baseline": (without_question(flow), ["1", "1"], "RECORD FILE", registered),
            "keyed": (flow, ["1", "1", "0912345678"], asked, said_back),
            "skipped": (flow, ["1", "1", ""], asked, registered),
        }
        servers = {
            name: AgiServer(settings, backend, flow=path[0], port=0) for name, path in paths.items()
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        try:
            for server in servers.values():
                server.start()
            for n in range(args.calls):
                for name, (_, keys, after, until) in paths.items():
                    uniqueid = f"1764000000.{n + 1}{name[0]}"
                    times[name].append(one_call(servers[name], uniqueid, keys, after, until))
        finally:
            for server in servers.values():
                server.stop()
            db.dispose()
    base = times["baseline"]
    print(f"{args.calls} calls per path, SQLite; ms from the caller's last key to the next prompt")
    for name, values in times.items():
        p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
        ratio50 = statistics.median(values) / statistics.median(base)
        ratio95 = percentile(values, 0.95) / percentile(base, 0.95)
        shown = f"{name:9} p50 {p50:7.1f}  p95 {p95:7.1f}"
        print(f"{shown}  ratio to baseline p50 {ratio50:.2f}  p95 {ratio95:.2f}")


if __name__ == "__main__":
    main()
