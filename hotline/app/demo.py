"""`hotline demo`: the whole path on one machine, no Asterisk needed.

The PBX simulator places calls to 15654 carrying real Arabic speech (the project's demo clips)
and hands each to the real FastAGI IVR, which registers the complaint in the casebook; the real
AMI listener hears the calls over TCP and stores them; the real Whisper model drafts each
complaint. Everything lives in one folder (a SQLite file, the recordings, a config.yaml), and
the HTTP API serves it on a socket in that folder, so people's commands (`hotline review`, ...)
work on it as the demo's admin (you), signed in, for as long as `hotline demo` keeps serving.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlmodel import Session, col, select

from casebook import agents, signin, site_secrets
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.labels import ENUM_LABELS_AR
from casebook.models import Call, Case, DraftState
from hotline.app.components import Agi, Listener, sign_audit_checkpoints, sign_the_stop
from hotline.app.config import Settings, load_settings
from hotline.app.http_server import ApiServer
from hotline.app.lifecycle import stop_on_signals, wait_for_stop
from hotline.simulator import PbxSimulator, SimulatedCall
from transcription.worker import Transcriber, TranscriptionWorker

# The clips ship with the repository (tests/data/arabic), not with an installed package.
CLIP_FOLDERS = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "arabic",
    Path("tests") / "data" / "arabic",
)
# The key each demo clip's caller presses at the category menu (1 billing, 2 network,
# 3 staff, 4 other), as the complaint it speaks would have it; unlisted clips press 4.
CATEGORY_KEYS = {
    "ar01": "2",
    "ar02": "1",
    "ar03": "2",
    "ar05": "4",
    "ar06": "3",
    "ar10": "2",
    "ar16": "4",
    "ar35": "1",
}
MOBILE_PREFIXES = ("091", "092", "094")
POLL_SECONDS = 0.25
# A safety net sized for this 2-core machine (the model runs at a third of real time).
BASE_TIMEOUT = 120.0
TIMEOUT_PER_CALL = 20.0
FINISHED_DRAFTS = (DraftState.READY.value, DraftState.NO_SPEECH.value, DraftState.FAILED.value)


class DemoError(Exception):
    """The demo cannot run or did not finish; phrased for the person who ran it."""


@dataclass(frozen=True)
class DemoClip:
    id: str
    path: Path
    text: str  # what the clip says
    seconds: float
    category_key: str


@dataclass(frozen=True)
class DemoCase:
    reference: str
    caller_number: str | None
    keypad_number: str | None  # the account number the caller keyed, if any
    category: str | None
    draft_text: str
    draft_state: str  # casebook.models.DraftState: ready, no_speech or failed
    draft_state_label_ar: str  # its Arabic name (casebook.labels), for the listing
    said: str  # what the caller's clip says, to compare with the draft


@dataclass(frozen=True)
class DemoResult:
    config_path: Path
    cases: list[DemoCase]  # in the order the calls were placed
    seconds: float  # wall time from the first call placed to the last draft
    server: str  # the demo's API address (unix:/.../hotline.sock)
    admin: str  # the demo site's admin: the OS account that ran it
    password: str  # the admin's password (kept in the demo folder, readable by its owner)


PASSWORD_FILE = "admin-password"
# The demo callers' account numbers: 2026 then the caller's place in the demo.
DEMO_ACCOUNT_PREFIX = "2026"


def write_demo_config(folder: Path) -> Path:
    """A config file for the demo site (paths relative to it), so the next commands can use it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    data = {
        "database": {"url": "sqlite:///hotline.db"},
        "recordings": {"root": "recordings"},
        "ivr": {"sounds_dir": "sounds"},
        "transcription": {"cache_dir": "models"},
        "server": {"socket": "hotline.sock"},
        "secrets": {"folder": "secrets"},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def demo_clips() -> list[DemoClip]:
    """The clips marked for the demo in the repository's Arabic test set."""
    folder = next((f for f in CLIP_FOLDERS if (f / "manifest.json").is_file()), None)
    if folder is None:
        raise DemoError(
            "the demo's Arabic recordings (tests/data/arabic) are not here: run `hotline demo` "
            "from a clone of the repository"
        )
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [
        DemoClip(
            item["id"],
            folder / item["file"],
            item["text"],
            item["duration"],
            CATEGORY_KEYS.get(item["id"], "4"),
        )
        for item in manifest
        if item.get("demo")
    ]


def demo_callers(count: int, clips: list[DemoClip]) -> list[tuple[SimulatedCall, DemoClip]]:
    """``count`` callers from different numbers, each speaking a demo clip in turn; every
    other one keys an account number when the IVR asks for it."""
    callers = []
    for n in range(count):
        clip = clips[n % len(clips)]
        number = f"{MOBILE_PREFIXES[n % len(MOBILE_PREFIXES)]}{n + 1:07d}"
        account = f"{DEMO_ACCOUNT_PREFIX}{n + 1:06d}" if n % 2 == 0 else ""
        call = SimulatedCall(
            number, category=clip.category_key, account_number=account, audio=clip.path
        )
        callers.append((call, clip))
    return callers


def demo_admin() -> str:
    """The OS account running the demo, by uid (the environment does not say who you are)."""
    return pwd.getpwuid(os.getuid()).pw_name


def add_demo_staff(
    db: Database, settings: Settings, folder: Path, progress: Callable[[str], None]
) -> str:
    """You as the site's admin (bootstrapped, as the site's first admin always is) and two
    agents, so `hotline review` works right after. Your password is made once and kept in the
    demo folder (mode 0600), so a second run signs you in again; returns it."""
    me = demo_admin()
    kept = folder / PASSWORD_FILE
    if db.run(lambda s: agents.list_agents(s, Actor.system("demo"))) != []:
        try:
            return kept.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise DemoError(
                f"{folder} has a demo site whose admin password is not in {kept}: use a new --dir"
            ) from None
    progress(f"adding you ({me}) as the site's admin and two agents")
    password = secrets.token_urlsafe(15)
    descriptor = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    db.run(
        lambda s: signin.bootstrap_admin(
            s,
            settings,
            username=me,
            display_name=me,
            password=password,
            os_user=me,
            now=utcnow(),
            roles=("admin", "supervisor"),
        )
    )
    for username, name, department in (
        ("amal", "أمل", "customer-care"),
        ("khaled", "خالد", "technical"),
    ):

        def add(
            s: Session, username: str = username, name: str = name, department: str = department
        ) -> None:
            admin = agents.resolve_actor(s, me, settings.roles)
            details = agents.AgentDetails(name, ("agent",), department=department)
            agents.add_agent(s, settings, admin, username, details)

        db.run(add)
    return password


def run_demo(
    folder: Path,
    calls: int = 5,
    progress: Callable[[str], None] = print,
    *,
    transcriber: Transcriber | None = None,
    timeout: float | None = None,
    serve: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Place ``calls`` calls through the whole path; returns their cases once all are drafted.

    ``transcriber`` replaces Whisper (tests); ``timeout`` (seconds) bounds the wait for the
    calls and drafts, by default generously for this machine. ``serve``: called with the
    result once every call is drafted, while the site (and its HTTP API) still runs; the demo
    then keeps serving until SIGTERM or Ctrl-C.
    """
    clips = demo_clips()
    config_path = write_demo_config(folder)
    settings = load_settings(config_path, environ={})
    db = Database(settings.database, create=True)
    try:
        # The demo is its own operator (it made the database too): the site's keys, then the
        # server's signing of audit checkpoints.
        site_secrets.create_site_keys(settings.secrets)
        signer = sign_audit_checkpoints(db, settings)
        password = add_demo_staff(db, settings, folder, progress)
        with _running_site(db, settings, transcriber) as (simulator, listener, worker):
            callers = demo_callers(calls, clips)
            started = time.monotonic()
            linkedids = simulator.place_calls(call for call, _ in callers)
            # Progress lines stay free of Arabic: the caller renders them as they come.
            for n, (call, clip) in enumerate(callers, start=1):
                progress(
                    f"call {n}/{calls} from {call.caller_number} to 15654 placed "
                    f"({clip.path.name}: {clip.seconds:.1f} s of Arabic speech)"
                )
            limit = timeout if timeout is not None else BASE_TIMEOUT + TIMEOUT_PER_CALL * calls
            watch = _Progress(db, linkedids, progress)
            while not watch.check():
                if listener.failure is not None:
                    raise DemoError(f"the AMI listener could not log in: {listener.failure}")
                if worker.fatal is not None:
                    raise worker.fatal
                if time.monotonic() - started > limit:
                    raise DemoError(
                        f"the demo did not finish in {limit:.0f} s: {watch.summary()}; "
                        f"the site so far is in {folder}"
                    )
                time.sleep(POLL_SECONDS)
            seconds = time.monotonic() - started
            said = {
                linkedid: clip.text for linkedid, (_, clip) in zip(linkedids, callers, strict=True)
            }
            result = DemoResult(
                config_path,
                db.run(lambda s: _demo_cases(s, said)),
                seconds,
                f"unix:{settings.server.socket}",
                demo_admin(),
                password,
            )
            progress(f"all {calls} calls stored and drafted in {seconds:.0f} s")
            if serve is not None:
                stop = threading.Event()
                with stop_on_signals() as received:
                    serve(result)
                    wait_for_stop(stop, received)
        sign_the_stop(db, signer)
    finally:
        db.dispose()
    return result


@contextmanager
def _running_site(
    db: Database, settings: Settings, transcriber: Transcriber | None
) -> Iterator[tuple[PbxSimulator, Listener, TranscriptionWorker]]:
    """The FastAGI IVR, the PBX simulator, the AMI listener, a transcription worker and the HTTP
    API (on the demo folder's socket), all local; stopped in reverse order, each finishing what
    it holds."""
    with ExitStack() as stack:
        # A port of its own, so a `hotline serve` on this machine is left alone.
        settings.agi.port = _free_port(settings.agi.host)
        agi = Agi(db, settings)
        agi.start()
        stack.callback(agi.stop)
        simulator = PbxSimulator(
            username=settings.ami.username,
            secret=settings.ami.secret,
            recordings_dir=settings.recordings.root,
            exten=settings.ami.hotline_exten,
            agi=agi.server.address,
            epoch=int(time.time()),  # Uniqueids as Asterisk makes them: new on every run
        )
        stack.enter_context(simulator)
        settings.ami.host, settings.ami.port = simulator.host, simulator.port
        listener = Listener(db, settings, give_up=threading.Event())
        listener.start()
        stack.callback(listener.stop)
        worker = TranscriptionWorker(
            db, settings, idle_seconds=POLL_SECONDS, transcriber=transcriber
        )
        worker.start()
        stack.callback(worker.stop)
        api = ApiServer(db, settings)
        api.start()
        stack.callback(api.stop)
        yield simulator, listener, worker


def _free_port(host: str) -> int:
    with socket.create_server((host, 0)) as probe:
        return int(probe.getsockname()[1])


class _Progress:
    """Tells of each call stored and each draft ready, once; done when all are."""

    def __init__(self, db: Database, linkedids: list[str], progress: Callable[[str], None]):
        self.db = db
        self.linkedids = linkedids
        self.progress = progress
        self.stored: set[str] = set()
        self.drafted: set[str] = set()

    def check(self) -> bool:
        calls, cases = self.db.run(self._read)
        for call in calls:
            if call.linkedid not in self.stored:
                self.stored.add(call.linkedid)
                self.progress(
                    f"call from {call.caller_number} ended and stored "
                    f"({len(self.stored)}/{len(self.linkedids)})"
                )
        for case in cases:
            if case.reference is not None and case.reference not in self.drafted:
                self.drafted.add(case.reference)
                self.progress(
                    f"draft {len(self.drafted)}/{len(self.linkedids)} {case.draft_state} "
                    f"for case {case.reference} ({len(case.draft_text or '')} characters)"
                )
        wanted = len(self.linkedids)
        return len(self.stored) >= wanted and len(self.drafted) >= wanted

    def summary(self) -> str:
        wanted = len(self.linkedids)
        return f"{len(self.stored)}/{wanted} calls stored, {len(self.drafted)}/{wanted} drafts"

    def _read(self, session: Session) -> tuple[list[Call], list[Case]]:
        ended = session.exec(
            select(Call).where(
                col(Call.linkedid).in_(self.linkedids), col(Call.ended_at).is_not(None)
            )
        )
        drafted = session.exec(
            select(Case).where(
                col(Case.call_linkedid).in_(self.linkedids),
                col(Case.draft_state).in_(FINISHED_DRAFTS),
            )
        )
        return list(ended), list(drafted)


def _demo_cases(session: Session, said: dict[str, str]) -> list[DemoCase]:
    found = session.exec(select(Case).where(col(Case.call_linkedid).in_(list(said))))
    by_call = {case.call_linkedid: case for case in found}
    return [
        DemoCase(
            reference=case.reference or "",
            caller_number=case.caller_number,
            keypad_number=case.keypad_number,
            category=case.category,
            draft_text=case.draft_text or "",
            draft_state=case.draft_state or "",
            draft_state_label_ar=ENUM_LABELS_AR[DraftState].get(case.draft_state or "", ""),
            said=text,
        )
        for linkedid, text in said.items()
        if (case := by_call.get(linkedid)) is not None
    ]
