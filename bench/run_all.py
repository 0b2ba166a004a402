"""Every benchmark, one after the other, on this machine: each prints its own table with its
in-run baseline; this prints the machine first and each bench's output under its name.

    .venv/bin/python bench/run_all.py [--quick]

--quick uses smaller inputs (100,000 cases, 2,000 callbacks, 12 clips) for a first look; the
README's table comes from a full run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}){memory}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def benches(quick: bool) -> list[tuple[str, list[str]]]:
    return [
        ("AMI ingest", ["ami_ingest.py"]),
        ("IVR keypad number", ["ivr_keypad.py", *(["--calls", "20"] if quick else [])]),
        ("transcription", ["transcribe.py", *(["--limit", "12"] if quick else [])]),
        ("burst drain", ["drain.py", *(["--count", "12"] if quick else [])]),
        ("hangup to draft", ["hangup_to_draft.py", *(["--messages", "2"] if quick else [])]),
        (
            "callback assignment",
            ["assign.py", *(["--callbacks", "2000", "--agents", "20"] if quick else [])],
        ),
        (
            "casebook queries, SQLite",
            ["casebook_queries.py", *(["--cases", "100000"] if quick else [])],
        ),
        (
            "casebook queries, PostgreSQL",
            ["casebook_queries.py", "--postgresql", *(["--cases", "100000"] if quick else [])],
        ),
        ("case search, SQLite", ["case_search.py", *(["--cases", "100000"] if quick else [])]),
        (
            "case search, PostgreSQL",
            ["case_search.py", "--postgresql", *(["--cases", "100000"] if quick else [])],
        ),
        ("CLI latency, SQLite", ["cli_latency.py", *(["--runs", "10"] if quick else [])]),
        (
            "CLI latency, PostgreSQL",
            ["cli_latency.py", "--postgresql", *(["--runs", "10"] if quick else [])],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(machine())
    failed = []
    for title, command in benches(args.quick):
        print(f"\n== {title} ==", flush=True)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(BENCH / command[0]), *command[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            check=False,
        )
        print(result.stdout.rstrip())
        print(f"({time.perf_counter() - started:.0f} s, exit {result.returncode})")
        if result.returncode != 0:
            failed.append(title)
    if failed:
        print(f"\nmissed its target or failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
