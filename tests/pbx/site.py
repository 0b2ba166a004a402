"""A hotline site on the real PBX: the shared Asterisk 22 bundle (``../shared/asterisk`` beside
the project), the project's own ``hotline asterisk config`` and ``hotline prompts build`` output
installed into it with the test-only contexts of ``contexts.conf``, and ``hotline serve``
against it; plus an AMI session of the test's own that places calls and keeps every byte
Asterisk sent it (the capture for the replay corpus).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import yaml

from casebook.db import Database
from hotline.ami_protocol import AmiMessage, ParseStats, decode, parse_block
from hotline.app.config import Settings, load_settings
from tests.conftest import add_agent

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO.parent / "shared" / "asterisk"
CONTEXTS = Path(__file__).with_name("contexts.conf")
HOTLINE = str(Path(sys.executable).with_name("hotline"))
# What a simulated caller says when asked to speak (mbrola-ar2; see tests/data/arabic/LICENSE.md).
SPEECH = REPO / "tests" / "data" / "arabic" / "ar07.wav"
SPEECH_SOUND = "custom/pbx-speech"
# The runtime libraries the bundle links against (its README's apt-get line).
LIBRARIES = ("jansson", "edit", "xml2", "sqlite3", "uuid", "ssl")
HEADER = re.compile(r"^;;; ---- (?P<file>\S+) ----$", re.MULTILINE)
DRIVER_USER = "pbxdriver"
# The site's agents (contexts.conf [pbx-agents]: 201 answers, 202 is busy, 203 never answers),
# in the agents table before `hotline asterisk config` runs, which may make them queue members.
AGENTS = {"pbxagent": "201", "pbxbusy": "202", "pbxaway": "203"}
PASSWORD = "pbx suite passphrase"
# Safety nets only: no test asserts how long anything took.
PATIENCE = 60.0


def unavailable() -> str | None:
    """Why the real PBX cannot run on this machine (one line), or None."""
    if not (BUNDLE / "start-asterisk").is_file():
        return f"no Asterisk bundle at {BUNDLE} (the shared folder beside the project)"
    missing = [name for name in LIBRARIES if ctypes.util.find_library(name) is None]
    if missing:
        return (
            f"Asterisk's runtime libraries are missing ({', '.join(missing)}); see "
            f"{BUNDLE / 'README.md'} for the apt-get line"
        )
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def split_config(text: str) -> dict[str, str]:
    """``hotline asterisk config`` output -> {file name: its part}, by the ``;;; ---- f ----``
    headers."""
    parts = HEADER.split(text)
    # [before the first header, name, body, name, body, ...]
    return {
        name: body.strip("\n") + "\n" for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def manager_user(manager: str) -> tuple[str, str]:
    """The generated manager.conf -> (its channelvars, its user sections): start-asterisk
    writes ``[general]`` itself, so only the user is appended."""
    match = re.search(r"^channelvars\s*=\s*(.*)$", manager, re.MULTILINE)
    if match is None:
        raise ValueError("the generated manager.conf names no channelvars")
    sections = re.split(r"^(?=\[)", manager, flags=re.MULTILINE)
    users = [s for s in sections if s.startswith("[") and not s.startswith("[general]")]
    return match[1].strip(), "".join(users)


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str | None = None
) -> str:
    done = subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=PATIENCE,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class Block:
    """One message as Asterisk sent it: its exact bytes and what they parse to."""

    raw: bytes
    message: AmiMessage


class AmiDriver:
    """The test's own AMI session (as the driver user): logged in with the listener's filters
    plus the dialer's, it places calls and keeps every byte it receives, banner first."""

    def __init__(
        self, port: int, secret: str, filters: Sequence[str], user: str = DRIVER_USER
    ) -> None:
        self.raw = bytearray()
        self.blocks: list[Block] = []
        self.stats = ParseStats()
        self._cond = threading.Condition()
        self._answers: dict[str, Future[AmiMessage]] = {}
        self._originated: dict[str, Future[AmiMessage]] = {}
        self._ids = iter(range(1, 1 << 30))
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self._buffer = b""
        self._banner_read = False
        self._reader = threading.Thread(target=self._read, name="pbx-driver", daemon=True)
        self._reader.start()
        self.action("Login", Username=user, Secret=secret, Events="off")
        for expression in filters:
            self.action("Filter", Operation="Add", Filter=expression)
        self.action("Events", EventMask="on")
        self.setup_actions = len(filters) + 2

    def lock(self) -> threading.Condition:
        """Held, the reader adds nothing to ``raw`` and ``blocks``."""
        return self._cond

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(PATIENCE)

    def send(self, name: str, headers: Sequence[tuple[str, str]]) -> str:
        action_id = f"pbx-{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"] + [f"{k}: {v}" for k, v in headers]
        self._answers[action_id] = Future()
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def action(self, name: str, **headers: str) -> AmiMessage:
        action_id = self.send(name, list(headers.items()))
        answer = self._answers[action_id].result(PATIENCE)
        if answer.get("Response") != "Success":
            raise RuntimeError(f"{name}: {answer.get('Message')}")
        return answer

    def originate(
        self, channel: str, context: str, exten: str, caller_id: str, variables: dict[str, str]
    ) -> Future[AmiMessage]:
        """Originate asynchronously; the future resolves with the OriginateResponse."""
        headers = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", "1"),
            ("CallerID", caller_id),
            ("Timeout", "30000"),
            ("Async", "true"),
        ] + [("Variable", f"{name}={value}") for name, value in variables.items()]
        done: Future[AmiMessage] = Future()
        with self._cond:
            action_id = self.send("Originate", headers)
            self._originated[action_id] = done
        return done

    def snapshot(self) -> str:
        """CoreShowChannels, as the listener sends it after each login; its ActionID, once
        the whole list has arrived."""
        action_id = self.send("CoreShowChannels", [])
        self._answers[action_id].result(PATIENCE)
        complete = self.wait_for(
            lambda m: m.name == "CoreShowChannelsComplete" and m.action_id == action_id
        )
        assert complete, "CoreShowChannels never completed"
        return action_id

    def wait_for(self, match: Callable[[AmiMessage], bool], timeout: float = PATIENCE) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: any(match(block.message) for block in self.blocks), timeout
            )

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while data := self._sock.recv(1 << 16):
                self._feed(data)
        for future in [*self._answers.values(), *self._originated.values()]:
            if not future.done():
                future.set_exception(ConnectionError("the AMI session ended"))

    def _feed(self, data: bytes) -> None:
        with self._cond:
            self.raw += data
            self._buffer += data
            if not self._banner_read:
                _, found, rest = self._buffer.partition(b"\r\n")
                if not found:
                    return
                self._banner_read, self._buffer = True, rest
            *complete, self._buffer = self._buffer.split(b"\r\n\r\n")
            for raw in complete:
                message = parse_block(decode(raw, self.stats), self.stats)
                if message is None:
                    continue
                self.blocks.append(Block(raw + b"\r\n\r\n", message))
                self._dispatch(message)
            self._cond.notify_all()

    def _dispatch(self, message: AmiMessage) -> None:
        action_id = message.action_id or ""
        if message.kind == "Response" and action_id in self._answers:
            self._answers[action_id].set_result(message)
        elif message.name == "OriginateResponse" and action_id in self._originated:
            self._originated.pop(action_id).set_result(message)


class Site:
    """Asterisk with the hotline installed, and ``hotline serve`` against it."""

    def __init__(self) -> None:
        # Asterisk's control socket path must stay short (start-asterisk allows 80 chars).
        base = os.environ.get("TMPDIR", "/tmp")
        self.root = Path(tempfile.mkdtemp(prefix="hlpbx-", dir=base if len(base) < 40 else "/tmp"))
        self.asterisk = self.root / "ast"
        self.config = self.root / "config.yaml"
        self.ami_port, self.agi_port = free_port(), free_port()
        self.driver_secret = secrets.token_hex(8)
        self.serve_log = self.root / "serve.log"
        self.serve: subprocess.Popen[bytes] | None = None
        self.started_asterisk = False
        self.env = {**os.environ, "HOTLINE_CONFIG": str(self.config)}
        self.one_time: dict[str, str] = {}
        self.people: dict[str, dict[str, str]] = {}  # each agent's environment, with a session

    # -- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        self._write_config()
        self._add_agents()
        generated = split_config(run(HOTLINE, "asterisk", "config", env=self.env))
        channelvars, user = manager_user(generated["manager.conf"])
        extensions = self.root / "extensions-local.conf"
        extensions.write_text(generated["extensions.conf"] + "\n" + CONTEXTS.read_text())
        manager = self.root / "manager-user.conf"
        manager.write_text(user)
        printed = run(
            str(BUNDLE / "start-asterisk"),
            *("--ami-port", str(self.ami_port), "--ami-user", DRIVER_USER),
            *("--ami-secret", self.driver_secret, "--channelvars", channelvars),
            *("--extensions", str(extensions), "--manager", str(manager)),
            str(self.asterisk),
        )
        self.started_asterisk = True
        values = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
        if values.get("ASTERISK_SOUNDS") != str(self.sounds) or values.get(
            "ASTERISK_RECORDINGS"
        ) != str(self.recordings):
            raise RuntimeError(f"start-asterisk put its folders elsewhere: {printed}")
        queues = generated.get("queues.conf")
        if queues is not None:
            with (self.asterisk / "etc" / "queues.conf").open("a") as conf:
                conf.write("\n" + queues)
            self.cli("module reload app_queue.so")
        self.cli("dialplan reload")
        (self.sounds / "custom").mkdir(exist_ok=True)
        shutil.copyfile(SPEECH, self.sounds / f"{SPEECH_SOUND}.wav")
        run(HOTLINE, "prompts", "build", env=self.env)
        self.start_serve()
        self.sign_in_agents()

    def _add_agents(self) -> None:
        """The schema and the site's keys (db upgrade), the first admin (--bootstrap, as the
        operator does it) and the agents, added before Asterisk starts: `asterisk config` makes
        its queue from their extensions. Each agent signs in once the server runs
        (sign_in_agents)."""
        run(HOTLINE, "db", "upgrade", env=self.env)
        password = f"{PASSWORD}\n{PASSWORD}\n"
        run(
            *(HOTLINE, "agents", "add", "root", "--name", "root", "--role", "admin"),
            *("--bootstrap", "--password-stdin"),
            env=self.env,
            stdin=password,
        )
        settings = self.settings
        db = Database(settings.database)
        try:
            for username, extension in AGENTS.items():
                self.one_time[username] = add_agent(
                    db, settings, username, by="root", extension=extension
                )
        finally:
            db.dispose()

    def sign_in_agents(self) -> None:
        """Each agent's first `hotline login` (one-time password, then their own), each with a
        session file of their own."""
        for username, one_time in self.one_time.items():
            home = self.root / "people" / username
            home.mkdir(parents=True, exist_ok=True)
            env = {**self.env, "XDG_CONFIG_HOME": str(home / "config")}
            env.pop("HOTLINE_CONFIG")  # people's commands read no config
            run(
                *(HOTLINE, "login", username, "--server", f"unix:{self.settings.server.socket}"),
                "--password-stdin",
                env=env,
                stdin=f"{one_time}\n{PASSWORD}\n{PASSWORD}\n",
            )
            self.people[username] = env

    def _write_config(self) -> None:
        config: dict[str, dict[str, object]] = {
            "ami": {"port": self.ami_port, "secret": secrets.token_hex(8)},
            "agi": {"port": self.agi_port},
            "ivr": {"sounds_dir": str(self.sounds)},
            "recordings": {"root": str(self.recordings)},
            "database": {"url": f"sqlite:///{self.root / 'hotline.db'}"},
            "transcription": {"cache_dir": str(self.root / "models")},
            # Customers' phones are contexts.conf's [default], reached as Dial(Local/<number>);
            # they take calls at any hour (a dial is refused outside the window).
            "callbacks": {
                "trunk": "Local",
                "ring_seconds": 6,
                "call_window_start": "00:00",
                "call_window_end": "23:59:59",
            },
        }
        # Agents' phones are contexts.conf's [pbx-agents], which the generated
        # [hotline-agents] context dials (callbacks.agent_device) for callbacks and the queue.
        config["callbacks"]["agent_device"] = "Local/{extension}@pbx-agents"
        self.config.write_text(yaml.safe_dump(config))

    @property
    def settings(self) -> Settings:
        return load_settings(self.config, environ={})

    @property
    def sounds(self) -> Path:
        return self.asterisk / "sounds"

    @property
    def recordings(self) -> Path:
        return self.asterisk / "recordings"

    @property
    def log(self) -> Path:
        return self.asterisk / "log" / "full"

    def cli(self, command: str) -> str:
        return run(str(self.asterisk / "asterisk-cli"), command)

    def driver(self) -> AmiDriver:
        settings = self.settings
        # The dialer's events too (callbacks), so one capture serves both readers.
        dialer = ["Event: DialBegin", "Event: DialEnd"]
        filters = list(dict.fromkeys([*settings.ami.event_filters, *dialer]))
        return AmiDriver(self.ami_port, self.driver_secret, filters)

    # -- hotline serve --------------------------------------------------------------------

    def start_serve(self) -> None:
        mark = self.serve_log.stat().st_size if self.serve_log.exists() else 0
        with self.serve_log.open("ab") as log:
            self.serve = subprocess.Popen(
                [HOTLINE, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if not self.wait_log(self.serve_log, "AMI: logged in", after=mark):
            raise RuntimeError(f"hotline serve did not log in to AMI; see {self.serve_log}")

    def kill_serve(self) -> None:
        assert self.serve is not None
        self.serve.send_signal(signal.SIGKILL)
        self.serve.wait(PATIENCE)

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        if self.started_asterisk:
            subprocess.run(
                [str(BUNDLE / "stop-asterisk"), "--purge", str(self.asterisk)],
                capture_output=True,
                timeout=PATIENCE,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_log(self, path: Path, text: str, *, after: int = 0, timeout: float = PATIENCE) -> bool:
        return wait_until(lambda: text in read_from(path, after), timeout)


def read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def wait_until(condition: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    """Poll a condition no event signals; the timeout is a safety net only."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.2)):
        if condition():
            return True
        pause.wait(0.2)
    return condition()


@contextlib.contextmanager
def running_site() -> Iterator[Site]:
    site = Site()
    try:
        site.start()
        yield site
    finally:
        site.stop()
