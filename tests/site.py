"""A hotline site run the way an operator runs one, for tests of the `hotline` command.

A folder with a config.yaml (SQLite in the folder, or a PostgreSQL schema), `hotline db upgrade`
(the schema, and the site's keys in var/secrets, which only the server reads), the first admin
from `hotline agents add ... --bootstrap` (as this OS user, who owns the folder), and `hotline
api` as a subprocess on the site's Unix socket. People sign in with `hotline login` and run
commands as themselves: each has their own XDG_CONFIG_HOME and XDG_STATE_HOME, so each has their
own session file, and nothing about who they are comes from the environment the test gives them.

The folders are short and under /tmp: a Unix socket's path holds at most 107 bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from casebook import cases, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import Case, CaseStatus, RecordingKind
from hotline.app.config import Settings, load_settings
from recordings.ingest import ingest_recording
from tests.conftest import pg_owner_url_for, pg_url_with_schema
from tests.recordings.helpers import write_wav

HOTLINE = str(Path(sys.executable).with_name("hotline"))
PASSWORD = "a long enough passphrase"
START_SECONDS = 60.0  # a safety net: the server starts in a few seconds
COMMAND_SECONDS = 120.0
# Running a command as another OS user (the tests run as root here).
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any HOTLINE_ setting (a person's command reads none
    but the server address) and without the XDG folders (each person gets their own)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HOTLINE_", "XDG_"))
    }
    return env | {"COLUMNS": "100", "LANG": "C.UTF-8"} | extra


@dataclass
class Person:
    """Someone at a terminal: their own session and state folders, their own commands."""

    site: Site
    username: str
    home: Path
    uid: int | None = None  # another OS user to run as (setpriv); None: this process's user

    def env(self, **extra: str) -> dict[str, str]:
        return clean_environment(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_STATE_HOME=str(self.home / "state"),
            **extra,
        )

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        prefix = [] if self.uid is None else AS_NOBODY
        return subprocess.run(
            [*prefix, HOTLINE, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env if env is not None else self.env(),
            timeout=COMMAND_SECONDS,
            check=False,
            cwd=self.home,
        )

    def start(
        self, *args: str, env: dict[str, str] | None = None, stdin: bool = False
    ) -> subprocess.Popen[str]:
        """A command left running (people at their desks at the same time); with ``stdin``,
        what is typed at it is given later (``communicate``)."""
        prefix = [] if self.uid is None else AS_NOBODY
        return subprocess.Popen(
            [*prefix, HOTLINE, *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else self.env(),
            cwd=self.home,
        )

    def ok(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command that must succeed."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"hotline {' '.join(args)}: {result.stderr}"
        return result

    @property
    def session_file(self) -> Path:
        return self.home / "config" / "hotline" / "session.json"

    @property
    def unsent_folder(self) -> Path:
        return self.home / "state" / "hotline" / "unsent"


@dataclass
class Site:
    """A site folder with its config; the server (``hotline api``) started and stopped."""

    folder: Path
    database_url: str
    socket: Path
    socket_group: str | None = None
    server: subprocess.Popen[str] | None = None
    people: dict[str, Person] = field(default_factory=dict)
    homes: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hl-home-")))

    @classmethod
    def create(
        cls,
        database_url: str | None = None,
        *,
        socket_path: Path | None = None,
        socket_group: str | None = None,
    ) -> Site:
        folder = Path(tempfile.mkdtemp(prefix="hl-site-", dir="/tmp"))
        site = cls(
            folder,
            database_url or "sqlite:///hotline.db",
            socket_path or folder / "run" / "hotline.sock",
            socket_group,
        )
        site.write_config()
        return site

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    def write_config(self, **sections: dict[str, object]) -> None:
        database: dict[str, object] = {"url": self.database_url, "retry_seconds": 2.0}
        if not self.database_url.startswith("sqlite"):
            # The server connects as the runtime role; `hotline db upgrade` as the owner.
            database["owner_url"] = pg_owner_url_for(self.database_url)
        data: dict[str, dict[str, object]] = {
            "database": database,
            "recordings": {"root": "recordings"},
            "transcription": {"cache_dir": "models"},
            "server": {"socket": str(self.socket), "socket_group": self.socket_group},
        }
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    def settings(self) -> Settings:
        return load_settings(self.config, environ={})

    @contextlib.contextmanager
    def database(self) -> Iterator[tuple[Database, Settings]]:
        """The site's database, opened in the test's process to put data in place (as the
        IVR or the listener would) or to read what a command left."""
        settings = self.settings()
        db = Database(settings.database)
        try:
            yield db, settings
        finally:
            db.dispose()

    def case(
        self,
        department: str = "customer-care",
        *,
        status: CaseStatus = CaseStatus.OPEN,
        draft_text: str = "الفاتورة غير صحيحة هذا الشهر",
    ) -> str:
        """A complaint registered as the IVR does, in ``department`` and ``status``."""

        def work(session: Session) -> str:
            case = cases.register_complaint(
                session,
                settings,
                Actor.system("ivr"),
                caller_number="0912345678",
                uniqueid=uuid.uuid4().hex,
                draft_text=draft_text,
            )
            case.department, case.status = department, status.value
            session.add(case)
            assert case.reference is not None
            return case.reference

        with self.database() as (db, settings):
            return db.run(work)

    def drafted_call(
        self,
        said: str,
        *,
        caller_number: str = "0910000001",
        uniqueid: str | None = None,
        doubtful: Sequence[str] = (),
        kind: RecordingKind = RecordingKind.MESSAGE,
        keypad_number: str | None = None,
        numbers: Sequence[tuple[str, str]] = (),
    ) -> tuple[str, Path]:
        """A complaint as a call leaves it: registered by the IVR (its reference given, with
        the ``keypad_number`` keyed), the caller's message ingested and drafted by the worker
        (Whisper's words, the ``doubtful`` ones in doubt, the spoken ``numbers`` as (digits,
        words said)). Its reference and its recording. Each call its own channel id unless
        ``uniqueid`` is given: a site may hold many."""
        worker = Actor.system("worker")
        uniqueid = uniqueid or f"1.{uuid.uuid4().hex[:8]}"
        with self.database() as (db, settings):
            message = settings.recordings.root / f"message-{uniqueid}.wav"
            write_wav(message, seconds=0.5)

            def register(session: Session) -> str:
                case = cases.register_complaint(
                    session,
                    settings,
                    Actor.system("ivr"),
                    caller_number=caller_number,
                    uniqueid=uniqueid,
                    keypad_number=keypad_number,
                )
                case.department = "customer-care"
                recording = ingest_recording(
                    session,
                    worker,
                    str(message),
                    kind=kind,
                    root=settings.recordings.root,
                    case_id=case.id,
                )
                assert recording is not None
                jobs.enqueue_transcription(session, worker, recording, utcnow())
                return case.reference or ""

            reference = db.run(register)
            job = db.run(lambda s: jobs.claim_next_job(s, "w", jobs.QueuePolicy(), utcnow()))
            assert job is not None and job.id is not None
            job_id = job.id
            words = [
                {
                    "text": f" {word}",
                    "doubtful": word in doubtful,
                    "start": 0.0,
                    "end": 1.0,
                    "probability": 0.3 if word in doubtful else 0.9,
                }
                for word in said.split()
            ]
            said_numbers = [{"digits": digits, "spoken": spoken} for digits, spoken in numbers]
            segments = [
                {
                    "start": 0.0,
                    "end": 3.0,
                    "text": said,
                    "doubtful": False,
                    "words": words,
                    "numbers": said_numbers,
                }
            ]
            data = jobs.TranscriptData(
                text=said,
                model_name="whisper-base",
                model_sha256=None,
                language="ar",
                language_probability=1.0,
                audio_seconds=3.0,
                processing_seconds=1.0,
                no_speech=False,
                segments=segments,
            )
            db.run(lambda s: jobs.finish_job(s, worker, job_id, "w", data, utcnow()))
        return reference, message

    def reject_drafts_left(self) -> None:
        """Every draft still waiting rejected by the admin (released first when leased): a
        module's shared site starts each test with an empty queue."""
        admin = self.people["admin"]
        for case in json.loads(admin.ok("drafts", "list", "--json").stdout):
            if case["leased_to"]:
                admin.ok("drafts", "release", case["reference"])
            admin.ok("drafts", "reject", case["reference"], "--reason", "test over")

    def stored_case(self, reference: str) -> Case:
        with self.database() as (db, _settings), db.session() as session:
            return session.exec(select(Case).where(Case.reference == reference)).one()

    # --- the operator -------------------------------------------------------------------------

    def operator(
        self,
        *args: str,
        stdin: str | None = None,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """An operator command with the site's config, as this OS user (the service account)
        unless ``prefix`` runs it as another."""
        return subprocess.run(
            [*prefix, HOTLINE, "-c", str(self.config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=clean_environment() if env is None else env,
            timeout=COMMAND_SECONDS,
            check=False,
            cwd=self.folder,
        )

    def upgrade(self) -> None:
        result = self.operator("db", "upgrade")
        assert result.returncode == 0, result.stderr

    def bootstrap(self, username: str = "admin", password: str = PASSWORD) -> None:
        result = self.operator(
            *("agents", "add", username, "--name", "مدير", "--role", "admin"),
            *("--bootstrap", "--password-stdin"),
            stdin=f"{password}\n{password}\n",
        )
        assert result.returncode == 0, result.stderr

    def start(self) -> None:
        """`hotline api` on the site's socket, running once the socket answers."""
        assert self.server is None
        self.server = subprocess.Popen(
            [HOTLINE, "-c", str(self.config), "api"],
            env=clean_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.folder,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise AssertionError(f"hotline api stopped: {self.server.stderr.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.socket))
                return
            time.sleep(0.1)
        raise AssertionError(f"hotline api did not listen on {self.socket}")

    def stop(self) -> str:
        """Stop the server (SIGTERM, as systemd does); what it wrote to stderr."""
        if self.server is None:
            return ""
        self.server.send_signal(signal.SIGTERM)
        _, errors = self.server.communicate(timeout=START_SECONDS)
        self.server = None
        return errors

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.homes, ignore_errors=True)
        if self.socket.parent != self.folder / "run":
            shutil.rmtree(self.socket.parent, ignore_errors=True)

    # --- people -------------------------------------------------------------------------------

    def person(self, username: str, *, uid: int | None = None) -> Person:
        """Someone with a home of their own (owned by ``uid`` when given), not signed in."""
        home = self.homes / f"{username}-{uuid.uuid4().hex[:6]}"
        home.mkdir(mode=0o700)
        if uid is not None:
            self.homes.chmod(0o755)
            os.chown(home, uid, uid)
        return Person(self, username, home, uid)

    def login(self, username: str, password: str = PASSWORD, *, uid: int | None = None) -> Person:
        """``username`` signed in with `hotline login` at a terminal of their own (a new home, so
        a session of its own; ``people`` keeps the first one made for each)."""
        person = self.person(username, uid=uid)
        result = person.run(
            "login", username, "--server", self.address, "--password-stdin", stdin=f"{password}\n"
        )
        assert result.returncode == 0, result.stderr
        self.people.setdefault(username, person)
        return person

    def add_agent(
        self,
        username: str,
        roles: Sequence[str] = ("agent",),
        department: str | None = None,
        *,
        extension: str | None = None,
        password: str = PASSWORD,
    ) -> Person:
        """A new agent added by the admin with `hotline agents add`, signed in with the one-time
        password it printed and a password of their own."""
        options = [f"--role={role}" for role in roles]
        if department is not None:
            options.append(f"--department={department}")
        if extension is not None:
            options.append(f"--extension={extension}")
        added = self.people["admin"].ok("agents", "add", username, "--name", username, *options)
        one_time = one_time_password(added.stdout, username)
        person = self.person(username)
        first = person.run(
            *("login", username, "--server", self.address, "--password-stdin"),
            stdin=f"{one_time}\n{password}\n{password}\n",
        )
        assert first.returncode == 0, first.stderr
        self.people.setdefault(username, person)
        return person


def one_time_password(output: str, username: str) -> str:
    match = re.search(rf"one-time password for {re.escape(username)}: (\S+)", output)
    assert match is not None, output
    return match.group(1)


def backend_url(request: pytest.FixtureRequest) -> str | None:
    """The database of a site for a fixture parametrised over BACKENDS: None (SQLite in the
    site's folder) or a migrated PostgreSQL schema living as long as the fixture."""
    if request.param != "postgresql":
        return None
    schema = "module_pg_schema" if request.scope == "module" else "pg_schema"
    return pg_url_with_schema(request.getfixturevalue(schema))


@contextlib.contextmanager
def running_site(
    database_url: str | None = None,
    *,
    socket_path: Path | None = None,
    socket_group: str | None = None,
    sections: dict[str, dict[str, object]] | None = None,
) -> Iterator[Site]:
    """A site with its schema, its first admin (signed in as ``admin``) and its server;
    ``sections``: config settings beside the harness's (e.g. ``{"ami": {"port": 5039}}``)."""
    site = Site.create(database_url, socket_path=socket_path, socket_group=socket_group)
    if sections:
        site.write_config(**sections)
    try:
        site.upgrade()
        site.bootstrap()
        site.start()
        site.login("admin")
        yield site
    finally:
        site.close()
