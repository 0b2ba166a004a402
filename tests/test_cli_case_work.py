"""Case work with the `hotline` command against a real site (tests/site.py), as agents and a
supervisor do it (issue 18): start, take and assign, notes, reopen, `recordings list`, and the
story `cases show` tells, in Arabic for people and by user name in --json."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select

from casebook.models import Agent, Case, CaseStatus
from tests.conftest import BACKENDS
from tests.recordings.helpers import recorded_call, reference_of
from tests.site import Site, backend_url, running_site


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """A site with a customer-care agent (hala), another (omar) and a supervisor (salem)."""
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("hala", ["agent"], "customer-care")
        running.add_agent("omar", ["agent"], "customer-care")
        running.add_agent("salem", ["supervisor"], "customer-care")
        yield running


def assigned_to(site: Site, reference: str) -> str | None:
    with site.database() as (db, _settings), db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        if case.assigned_agent_id is None:
            return None
        return session.get(Agent, case.assigned_agent_id).username  # type: ignore[union-attr]


def test_an_agent_starts_an_open_case_and_resolves_it(site: Site) -> None:
    """The defect "no way to start work": no command moved a case to in_progress."""
    reference = site.case("customer-care")
    hala = site.people["hala"]
    refused = hala.run("cases", "resolve", reference, "--summary", "أعيد الخط")
    assert refused.returncode == 1 and "allowed: escalated, in_progress" in refused.stderr
    started = hala.ok("cases", "start", reference)
    assert f"case {reference}: in_progress" in started.stdout
    assert assigned_to(site, reference) == "hala"
    hala.ok("cases", "resolve", reference, "--summary", "أعيد الخط")
    assert site.stored_case(reference).escalation_level == 0


def test_take_then_a_supervisor_reassigns(site: Site) -> None:
    reference = site.case("customer-care")
    hala, omar = site.people["hala"], site.people["omar"]
    refused = hala.run("cases", "assign", reference, "--to", "omar")
    assert refused.returncode == 1 and refused.stderr.startswith("refused: ")
    assert "supervisor's" in refused.stderr and refused.stderr.count("\n") == 1
    assert (
        f"case {reference} to hala" in hala.ok("cases", "assign", reference, "--to", "hala").stdout
    )
    taken = omar.run("cases", "assign", reference, "--to", "omar")
    assert taken.returncode == 1 and "someone else's case" in taken.stderr
    site.people["salem"].ok("cases", "assign", reference, "--to", "omar")
    assert assigned_to(site, reference) == "omar"


def test_notes_from_the_option_or_standard_input_are_inert_on_screen(site: Site) -> None:
    reference = site.case("customer-care")
    hala = site.people["hala"]
    hala.ok("cases", "note", reference, "--text", "اتصل العميل مرة أخرى")
    hala.ok("cases", "note", reference, stdin="سطر أول\n\x1b[2Jسطر ثان\n")
    shown = hala.ok("cases", "show", reference)
    assert "\x1b" not in shown.stdout and "\\x1b" in shown.stdout
    story = json.loads(hala.ok("cases", "show", reference, "--json").stdout)
    assert [(n["by"], n["text"]) for n in story["notes"]] == [
        ("hala", "اتصل العميل مرة أخرى"),
        ("hala", "سطر أول\n\x1b[2Jسطر ثان"),
    ]
    empty = hala.run("cases", "note", reference, stdin="  \n")
    assert empty.returncode == 1 and "the note is empty" in empty.stderr


def test_only_a_supervisor_reopens_a_closed_case_and_the_reason_is_in_its_history(
    site: Site,
) -> None:
    reference = site.case("customer-care", status=CaseStatus.CLOSED)
    hala, salem = site.people["hala"], site.people["salem"]
    assert "a supervisor reopens it" in hala.run("cases", "start", reference).stderr
    denied = hala.run("cases", "reopen", reference, "--reason", "عاد الانقطاع")
    assert denied.returncode == 1 and denied.stderr.startswith("refused: ")
    missing = salem.run("cases", "reopen", reference)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    assert (
        "in_progress" in salem.ok("cases", "reopen", reference, "--reason", "عاد الانقطاع").stdout
    )
    story = json.loads(salem.ok("cases", "show", reference, "--json").stdout)
    assert story["history"][-1]["by"] == "salem"
    assert story["history"][-1]["detail"]["reason"] == "عاد الانقطاع"
    shown = salem.ok("cases", "show", reference).stdout
    assert "reopened" in shown and "salem" in shown


def test_cases_show_tells_the_story_with_user_names(site: Site) -> None:
    """The defect "cases show hides the story"."""
    with site.database() as (db, settings):
        hala_id = None
        with db.session() as session:
            hala_id = session.exec(select(Agent.id).where(Agent.username == "hala")).one()
        recording = recorded_call(db, settings, "story-call", agent_id=hala_id)
        reference = reference_of(db, recording)
    assert reference is not None
    hala, salem = site.people["hala"], site.people["salem"]
    hala.ok("cases", "start", reference)
    hala.ok("cases", "resolve", reference, "--summary", "أعيد المبلغ للعميل")
    hala.ok("followup", "log", reference, "--method", "phone", "--result", "no-answer")
    salem.ok("cases", "close", reference, "--reason", "لا رد بعد ثلاث محاولات")

    shown = salem.ok("cases", "show", reference).stdout
    for part in ("history", "follow-ups", "callbacks", "recordings", "resolution summary"):
        assert part in shown, part
    assert "close reason" in shown and "hala" in shown and "salem" in shown
    assert f"{recording.id} " in shown and "مكالمة" in shown  # the kind by its Arabic name
    story = json.loads(salem.ok("cases", "show", reference, "--json").stdout)
    assert story["assigned_to"] == "hala"
    assert story["resolution_summary"] == "أعيد المبلغ للعميل"  # logical order for scripts
    assert [step["by"] for step in story["history"]][-4:] == ["hala", "hala", "hala", "salem"]
    assert [r["id"] for r in story["recordings"]] == [recording.id]
    assert story["callbacks"][0]["id"] > 0 and story["followups"][0]["by"] == "hala"


def test_recordings_list_shows_what_you_may_play(site: Site) -> None:
    """The defect "no way to find a case's recordings"."""
    with site.database() as (db, settings):
        with db.session() as session:
            omar_id = session.exec(select(Agent.id).where(Agent.username == "omar")).one()
        mine = recorded_call(db, settings, "omar-call", agent_id=omar_id)
        other = recorded_call(db, settings, "nobodys-call")
        reference = reference_of(db, mine)
    omar = site.people["omar"]
    rows = json.loads(omar.ok("recordings", "list", "--json").stdout)
    assert mine.id in [r["id"] for r in rows] and other.id not in [r["id"] for r in rows]
    row = next(r for r in rows if r["id"] == mine.id)
    assert (row["case"], row["kind"], row["agent"]) == (reference, "call", "omar")
    listed = omar.ok("recordings", "list", "--case", str(reference)).stdout
    assert str(reference) in listed and "مكالمة" in listed
    everything = json.loads(site.people["salem"].ok("recordings", "list", "--json").stdout)
    assert {mine.id, other.id} <= {r["id"] for r in everything}
    assert omar.ok("recordings", "list", "--csv").stdout.startswith("id,kind,")
