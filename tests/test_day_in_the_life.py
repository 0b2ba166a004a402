"""A day at the hotline through the `hotline` command against the server, as the seed's
process runs it (issue 18, item 9): two calls are drafted; two agents review at once (each draft
leased to one of them, a supervisor refused the one being reviewed); the case is started (two
agents at once, one wins), resolved, followed up "not satisfied" twice (back to work, then
escalated), resolved by the supervisor, followed up "partly" and "satisfied", and closed; QA
samples and scores the agent's call; the report's CSAT, CES and SLA figures are what the day did.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, select

from casebook.access import Actor
from casebook.models import Case, RecordingKind
from recordings.ingest import ingest_recording
from tests.conftest import BACKENDS
from tests.recordings.helpers import write_wav
from tests.site import Person, Site, backend_url, running_site

SAID = "انقطع الإنترنت عندي منذ ثلاثة أيام والخدمة بطيئة جداً"
FIXED = "انقطع الإنترنت عندي منذ ثلاثة أيام والخدمة بطيئة جداً في المساء"
OTHER = "الفاتورة هذا الشهر أعلى من المعتاد"
# Typed at `hotline review`: edit (the editor appends words), accept, category 2 (network),
# the department as it is; then stop (a second draft, if offered, stays for others).
EDIT_AND_ACCEPT = "e\na\n2\n\nq\n"
ACCEPT = "a\n1\n\nq\n"
EDITOR = "sed -i s/جداً/جداً\\ في\\ المساء/"
SCORES = [
    "listening_empathy=2",
    "seriousness=2",
    "transparency=1",
    "neutrality=2",
    "speed=1",
    "keeping_in_touch=2",
    "practical_solutions=2",
    "confidentiality=yes",
    "professionalism=2",
    "rebuilding_trust=1",
]


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("amal", ["agent"], "customer-care", extension="201")
        running.add_agent("badr", ["agent"], "customer-care", extension="202")
        running.add_agent("salem", ["supervisor"], "customer-care")
        running.add_agent("qamar", ["qa"])
        yield running


def shown(person: Person, reference: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(person.ok("cases", "show", reference, "--json").stdout)
    return case


def leased_to(person: Person, reference: str, holder: str) -> bool:
    listed = json.loads(person.ok("drafts", "list", "--json").stdout)
    rows = listed["drafts"] if isinstance(listed, dict) else listed
    return any(row["reference"] == reference and row.get("leased_to") == holder for row in rows)


def wait_until(what: str, check: Any, safety_seconds: float = 60) -> None:
    deadline = time.monotonic() + safety_seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.2)


def at_once(*commands: tuple[Person, tuple[str, ...]]) -> list[subprocess.CompletedProcess[str]]:
    """The commands started together, as people at their desks would."""
    started = [(person.start(*args), args) for person, args in commands]
    finished = []
    for process, args in started:
        out, err = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return finished


def followup(result: str, effort: int) -> tuple[str, ...]:
    """`hotline followup log` of a phone call with its result and the caller's effort score."""
    return ("--method", "phone", "--result", result, "--effort", str(effort))


SAMPLE = ("qa", "sample", "--period", "1d", "--per-agent", "1", "--seed", "7", "--json")


def agents_call(site: Site, reference: str) -> int:
    """The follow-up call the case's agent made, recorded (MixMonitor) and stored on the case
    as the listener stores it: what QA reviews."""
    with site.database() as (db, settings):
        path = settings.recordings.root / "callback-1.wav"
        write_wav(path, seconds=2.0)

        def store(session: Session) -> int:
            case = session.exec(select(Case).where(Case.reference == reference)).one()
            recording = ingest_recording(
                session,
                Actor.system("listener"),
                str(path),
                kind=RecordingKind.CALLBACK,
                root=settings.recordings.root,
                case_id=case.id,
            )
            assert recording is not None and recording.id is not None
            return recording.id

        return db.run(store)


def test_a_day_from_the_call_to_the_closed_case_and_its_figures(site: Site) -> None:
    amal, badr, salem, qamar = (site.people[name] for name in ("amal", "badr", "salem", "qamar"))
    admin = site.people["admin"]
    first, _ = site.drafted_call(SAID, caller_number="0912345678", uniqueid="10.1")
    second, _ = site.drafted_call(OTHER, caller_number="0923456789", uniqueid="10.2")

    # Two agents review at once. amal opens the oldest draft and edits; while she has it open
    # a supervisor cannot confirm it over her head, and badr's queue offers him the other one.
    review = amal.start("review", env=amal.env(EDITOR=EDITOR), stdin=True)
    wait_until("amal has the first draft open", lambda: leased_to(salem, first, "amal"))
    over_her_head = salem.run("drafts", "confirm", first, "--category", "network")
    assert over_her_head.returncode == 1
    assert "amal" in over_her_head.stderr and over_her_head.stderr.count("\n") == 1
    assert badr.ok("review", stdin=ACCEPT).returncode == 0
    _, err = review.communicate(EDIT_AND_ACCEPT, timeout=120)
    assert review.returncode == 0, err
    case = shown(admin, first)
    assert (case["status"], case["category"], case["confirmed_by"]) == ("open", "network", "amal")
    assert case["confirmed_text"] == FIXED
    assert (shown(admin, second)["status"], shown(admin, second)["confirmed_by"]) == (
        "open",
        "badr",
    )

    # Both agents start the case at the same moment: one takes it, the other is told why not.
    started = at_once((amal, ("cases", "start", first)), (badr, ("cases", "start", first)))
    assert sorted(result.returncode for result in started) == [0, 1]
    winner = (amal, badr)[[result.returncode for result in started].index(0)]
    loser_said = next(result.stderr for result in started if result.returncode)
    assert loser_said.count("\n") == 1 and "Traceback" not in loser_said
    assert shown(admin, first)["assigned_to"] == winner.username

    # Resolved, and the caller is not satisfied: back to work; resolved again, still not
    # satisfied after the second round: one management level up. Meanwhile the supervisor
    # writes a note on the case.
    winner.ok("cases", "resolve", first, "--summary", "أعيد تشغيل المحطة")
    at_once(
        (winner, ("followup", "log", first, *followup("not-satisfied", 2))),
        (salem, ("cases", "note", first, "--text", "العميل اتصل مرتين اليوم")),
    )
    assert shown(admin, first)["status"] == "in_progress"
    winner.ok("cases", "resolve", first, "--summary", "استبدال المقسم")
    winner.ok("followup", "log", first, *followup("not-satisfied", 1))
    case = shown(admin, first)
    assert (case["status"], case["escalation_level"]) == ("escalated", 1)

    # The supervisor resolves it; the caller is partly satisfied, then satisfied; closed.
    salem.ok("cases", "resolve", first, "--summary", "تغيير مسار الخط إلى محطة أخرى")
    winner.ok("followup", "log", first, *followup("partial", 3))
    recording = agents_call(site, first)
    winner.ok("followup", "log", first, *followup("satisfied", 5))
    winner.ok("cases", "close", first)

    case = shown(admin, first)
    assert case["status"] == "closed"
    moves = [step["status"] for step in case["history"] if step["status"]]
    assert moves == [
        "draft",
        "open",
        "in_progress",
        "resolved",
        "follow_up",
        "in_progress",
        "resolved",
        "follow_up",
        "escalated",
        "resolved",
        "follow_up",
        "closed",
    ]
    assert [item["result"] for item in case["followups"]] == [
        "not_satisfied",
        "not_satisfied",
        "partially_satisfied",
        "satisfied",
    ]
    # Never more than one follow-up callback open; each cancelled when the case moved on.
    assert [(item["reason"], item["status"]) for item in case["callbacks"]] == [
        ("follow_up", "cancelled")
    ] * 3
    assert [note["by"] for note in case["notes"]] == ["salem"]

    # QA at the end of the day: the agent's call is in the sample (the callers' messages, with
    # no agent on the line, are left out and said so) and is scored.
    sample = json.loads(qamar.ok(*SAMPLE).stdout)
    assert [(item["recording"], item["agent"]) for item in sample["recordings"]] == [
        (recording, winner.username)
    ]
    assert sample["excluded"]
    again = qamar.ok(*SAMPLE)
    assert json.loads(again.stdout)["recordings"] == sample["recordings"]
    scored = qamar.ok("qa", "score", str(recording), *(f"--score={s}" for s in SCORES))
    assert f"recording {recording} scored" in scored.stdout

    # The day's figures: four answered follow-ups (1 satisfied, 1 partly), efforts 2, 1, 3, 5
    # (easy is 4 or more), the case resolved inside its promise, badr's still open.
    figures = json.loads(salem.ok("report", "--json").stdout)
    assert figures["followups_answered"] == 4
    assert (figures["csat_strict"], figures["csat_lenient"]) == (0.25, 0.5)
    assert (figures["ces"], figures["ces_mean"]) == (0.25, 2.75)
    assert (figures["sla_met"], figures["sla_missed"], figures["sla_overdue_open"]) == (1, 0, 0)
    assert figures["cases_by_status"] == {"closed": 1, "open": 1}
    qa_figures = json.loads(qamar.ok("qa", "report", "--period", "1d", "--json").stdout)
    assert qa_figures["reviews"] == 1
