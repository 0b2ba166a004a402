"""Listings at 80 columns through the CLI against a running site (issue 18, "80 columns" and
"Arabic on screen"): what people act on is whole, the complaint has room, the audit detail
reads as words, a choice in --help is never broken, labels keep their colon."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import select

import cli
import cli_render
from casebook.clock import utcnow
from casebook.models import Call, Case
from cli_listing import display_width
from tests.conftest import BACKENDS
from tests.site import Site, backend_url, running_site

COMPLAINT = "ما زال الانقطاع مستمراً يومياً منذ ثلاثة أيام ولم يتصل بي أحد من الشركة حتى الآن"
NUMBER = "+218912345678"
DATE = re.compile(r"\d\d-\d\d \d\d:\d\d")


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        yield running


def called(site: Site) -> str:
    """A complaint from an international number, with the call it came in on."""
    reference = site.case("customer-care", draft_text=COMPLAINT)
    with site.database() as (db, _settings), db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        case.caller_number = NUMBER
        now = utcnow()
        session.add(
            Call(
                linkedid=f"{uuid.uuid4().hex[:10]}.{uuid.uuid4().hex[:6]}",
                caller_number=NUMBER,
                started_at=now,
                ended_at=now,
                duration_seconds=42.0,
                recording_path=f"/var/spool/asterisk/monitor/2026/11/30/{uuid.uuid4().hex}.wav",
                case_id=case.id,
            )
        )
        session.add(case)
        session.commit()
    return reference


def at_80(site: Site, username: str, *args: str) -> subprocess.CompletedProcess[str]:
    person = site.people[username]
    shown = person.run(*args, env=person.env(COLUMNS="80"))
    assert shown.returncode == 0, shown.stderr
    return shown


def fits(output: str) -> None:
    assert all(display_width(line) <= 80 for line in output.splitlines()), output


def test_calls_list_keeps_numbers_references_and_dates_whole_at_80_columns(site: Site) -> None:
    reference = called(site)
    shown = at_80(site, "admin", "calls", "list").stdout
    fits(shown)
    (row,) = [line for line in shown.splitlines() if reference in line]
    assert NUMBER in row and DATE.search(row), shown
    assert "مكتملة" in row and "complete" not in row  # the call's state by its Arabic name


def test_cases_list_gives_the_complaint_room_at_80_columns(site: Site) -> None:
    reference = called(site)
    shown = at_80(site, "admin", "cases", "list").stdout
    fits(shown)
    lines = shown.splitlines()
    (index,) = [i for i, line in enumerate(lines) if reference in line]
    assert NUMBER in lines[index] and DATE.search(lines[index])
    # Two lines of the complaint, its first words first (logical order through a pipe).
    assert " ".join(COMPLAINT.split()[:3]) in lines[index]
    assert "مفتوحة" in lines[index] or "open" not in lines[index]


def test_audit_list_shows_the_detail_as_words_not_json(site: Site) -> None:
    # The last entries are this test's own, whichever tests ran before it on the module's site.
    at_80(site, "admin", "calls", "list")  # a count: rows
    at_80(site, "admin", "cases", "list")  # a list and a mapping: references, criteria
    shown = at_80(site, "admin", "audit", "list", "--limit", "5").stdout
    fits(shown)
    assert '{"' not in shown and "(rows): " in shown


def test_a_cut_listing_says_how_many_more(site: Site) -> None:
    called(site)
    called(site)
    shown = at_80(site, "admin", "calls", "list", "--limit", "1").stdout
    assert re.search(r"\(\d+ more: --limit N or --all\)", shown), shown
    assert "more" not in at_80(site, "admin", "calls", "list", "--all").stdout


def test_a_choice_in_help_is_never_broken_at_80_columns(site: Site) -> None:
    shown = at_80(site, "admin", "cases", "list", "--help").stdout
    for word in cli.CaseStatus:
        assert word.value in shown, shown


def test_a_label_keeps_its_colon_at_its_end(capsys: pytest.CaptureFixture[str]) -> None:
    cli.fact("الحالة", "قيد المعالجة", "visual")
    line = capsys.readouterr().out.strip()
    # Right to left, the label is drawn right-most and its colon just left of it.
    assert line.endswith(":" + cli_render.visual("الحالة")), line


def test_a_history_step_names_departments_and_categories_in_arabic() -> None:
    rerouted = {
        "action": "case.reroute",
        "detail": {
            "from": "customer-care",
            "to": "billing",
            "from_label_ar": "خدمة العملاء",
            "to_label_ar": "الفواتير",
        },
    }
    assert cli.step_detail(rerouted) == "خدمة العملاء -> الفواتير"
    # A code the site names nowhere is shown as it is.
    detail = {"category": "network", "department": "custom", "category_label_ar": "الشبكة"}
    assert cli.step_detail({"action": "case.open", "detail": detail}) == "الشبكة; custom"
