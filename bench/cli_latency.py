"""How long an agent waits for a command: `hotline cases list --json` against a running server
(`hotline api`, the real component, on the site's Unix socket) on a site with 10,000 cases,
against the bare interpreter's start (`python -c pass`) measured in the same run, the two
alternating so both see the same machine. Target: p50 ratio <= 6 (issue 16).

Also printed, to tell where the time goes: the same request made from this process (the server's
share: no interpreter start, no imports), and whether the command's own modules were byte-compiled
(`./dev setup` compiles them, as pip does an installed package; with PYTHONDONTWRITEBYTECODE set
and no compiled files, every run compiles cli.py again: about 50 ms more, ratio 6.3 instead of 5.1
on 2026-11-30).

    .venv/bin/python bench/cli_latency.py [--cases N] [--runs N] [--postgresql]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebook_queries import PG, fill  # the same 10,000 cases as the query bench makes

from casebook import signin
from casebook.clock import utcnow
from casebook.db import Database, upgrade_database
from cli_client import ApiClient, load_session
from hotline.app.config import load_settings
from hotline.app.operator import create_site_keys

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = str(Path(sys.executable).with_name("hotline"))
TARGET = 6.0
PASSWORD = "bench passphrase 15654"
START_SECONDS = 60.0


def write_site(folder: Path, url: str) -> Path:
    config = folder / "config.yaml"
    data = {
        "database": {"url": url},
        "recordings": {"root": "recordings"},
        "server": {"socket": str(folder / "run" / "hotline.sock")},
    }
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config


def start_server(config: Path, socket_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [HOTLINE, "-c", str(config), "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"hotline api stopped with exit code {server.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(socket_path))
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"hotline api did not listen on {socket_path}")


def wall_ms(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    # stderr kept, not shown: the listing's "N more" line would print once per run.
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def p(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgresql", action="store_true", help="the local server, not SQLite")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hl-bench-", dir="/tmp"))
    schema = None
    if args.postgresql:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(PG).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    else:
        url = "sqlite:///hotline.db"
    config = write_site(folder, url)
    settings = load_settings(config, environ={})
    # On PostgreSQL only the owner migrates (here one role, the superuser, is both). The
    # server refuses to start without the site's keys, which only the operator makes.
    upgrade_database(settings.database)
    create_site_keys(settings)
    db = Database(settings.database, create=True)
    fill(db, args.cases)
    db.run(
        lambda s: signin.bootstrap_admin(
            s,
            settings,
            username="boss",
            display_name="Boss",
            password=PASSWORD,
            os_user="bench",
            now=utcnow(),
        )
    )
    db.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "XDG_"))}
    env["XDG_CONFIG_HOME"] = str(folder / "home" / "config")
    socket_path = settings.server.socket
    server = start_server(config, socket_path, env)
    try:
        subprocess.run(
            [HOTLINE, "login", "boss", "--server", f"unix:{socket_path}", "--password-stdin"],
            input=f"{PASSWORD}\n".encode(),
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        listing = [HOTLINE, "cases", "list", "--json"]
        bare = [sys.executable, "-c", "pass"]
        wall_ms(listing, env), wall_ms(bare, env)  # warm the page cache and the server
        cli_ms: list[float] = []
        bare_ms: list[float] = []
        for _ in range(args.runs):
            cli_ms.append(wall_ms(listing, env))
            bare_ms.append(wall_ms(bare, env))
        os.environ["XDG_CONFIG_HOME"] = env["XDG_CONFIG_HOME"]
        api = ApiClient.signed_in(load_session())
        request_ms = [timed(lambda: api.get("/cases", {"limit": 50})) for _ in range(args.runs)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=START_SECONDS)

    backend = "PostgreSQL" if schema else "SQLite"
    print(
        f"CLI latency: `hotline cases list --json` (50 cases) against `hotline api` on "
        f"{args.cases:,} cases ({backend}), {args.runs} runs each, alternating with "
        "`python -c pass`"
    )
    compiled = Path(importlib.util.cache_from_source(str(ROOT / "cli.py")))
    fresh = compiled.exists() and compiled.stat().st_mtime >= (ROOT / "cli.py").stat().st_mtime
    print(f"cli.py byte-compiled: {'yes' if fresh else 'no (run ./dev setup)'}")
    print(f"{'':<40}{'p50 ms':>9}{'p95 ms':>9}")
    for name, values in (
        ("python -c pass", bare_ms),
        ("hotline cases list --json", cli_ms),
        ("  of which the request (in-process)", request_ms),
    ):
        print(f"{name:<40}{p(values, 50):>9.1f}{p(values, 95):>9.1f}")
    ratio = p(cli_ms, 50) / p(bare_ms, 50)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"p50 ratio {ratio:.1f} (target <= {TARGET:g}): {verdict}")
    shutil.rmtree(folder, ignore_errors=True)
    if schema is not None:
        with create_engine(PG).begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    if ratio > TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
