"""Issue 17, item 4, against a real site (tests/site.py) on SQLite and PostgreSQL: Rich markup,
escape sequences and bidi overrides stored in every kind of text (an agent's display name, a
caller number, a complaint's draft and confirmed text, a resolution, follow-up notes, a
callback's number and reason, an audit entry's detail) are shown inert by every list and show,
crash nothing, and stay the data they are in --json.

What goes in through the API goes in as people would put it (``hotline agents add --name``,
``drafts confirm --text``, ``followup log --note``...). Caller numbers and a callback's reason
cannot be stored that way any more (casebook.phone refuses them, reasons are the service's
words): they are written into the database as rows from before those rules would be.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import select as query

from casebook.clock import utcnow
from casebook.models import Agent, Call, Callback, Case, CaseStatus
from tests.conftest import BACKENDS
from tests.site import HOTLINE, Person, Site, backend_url, running_site

MARKUP = "[/x]"
LINK = "[link=https://evil]x[/link]"
TITLE = "\x1b]0;title\x07"
CLEAR = "\x1b[2J"
OVERRIDE = "\u202e"
HOSTILE = f"شكوى {MARKUP} {LINK} {TITLE} {CLEAR} {OVERRIDE}abc"
# What each becomes on the screen.
SHOWN_TITLE = "\\x1b]0;title\\x07"
SHOWN_CLEAR = "\\x1b[2J"
SHOWN_OVERRIDE = "\\u202e"
# Caller numbers hold 32 characters, a callback's reason 16: the pieces that fit.
NUMBER_LINK = "[link=https://evil]9[/link]"
NUMBER_ESCAPES = f"{MARKUP}{TITLE}{CLEAR}{OVERRIDE}09"
REASON = f"{MARKUP}{CLEAR}{OVERRIDE}"


@dataclass
class Planted:
    site: Site
    draft: str  # a draft whose Whisper text is hostile
    confirmed: str  # a case confirmed with a hostile text, resolved, followed up, escalated
    named: Person  # an agent whose display name is hostile


def work_on(site: Site, reference: str) -> None:
    """The case in progress (no command moves it there: working on it does)."""
    with site.database() as (db, _settings), db.session() as session:
        case = session.exec(query(Case).where(Case.reference == reference)).one()
        case.status = CaseStatus.IN_PROGRESS.value
        session.add(case)


def plant_legacy_rows(site: Site, reference: str, agent: str) -> None:
    """Caller numbers and a callback as rows from before numbers were checked would hold them."""
    with site.database() as (db, _settings), db.session() as session:
        case = session.exec(query(Case).where(Case.reference == reference)).one()
        case.caller_number = NUMBER_ESCAPES
        holder = session.exec(query(Agent).where(Agent.username == agent)).one()
        callback = session.exec(query(Callback).where(Callback.case_id == case.id)).one()
        callback.phone_number, callback.reason = NUMBER_ESCAPES, REASON
        callback.status, callback.assigned_agent_id = "assigned", holder.id
        callback.due_from = utcnow() - timedelta(minutes=5)
        now = utcnow()
        for index, number in enumerate((NUMBER_LINK, NUMBER_ESCAPES)):
            session.add(
                Call(
                    linkedid=f"{uuid.uuid4().hex[:8]}.{index}",
                    caller_number=number,
                    started_at=now,
                    ended_at=now,
                    duration_seconds=3.0,
                    hangup_cause_text=f"{CLEAR}{OVERRIDE}Normal",
                    case_id=case.id,
                )
            )
        session.add_all([case, callback])


@pytest.fixture(scope="module", params=BACKENDS)
def planted(request: pytest.FixtureRequest) -> Iterator[Planted]:
    url = backend_url(request)
    with running_site(url) as site:
        admin = site.people["admin"]
        site.add_agent("sara", ["agent"], "customer-care", extension="201")
        added = admin.ok("agents", "add", "hostile", "--name", HOSTILE, "--role", "supervisor")
        named = site.person("hostile")
        one_time = re.search(r"one-time password for hostile: (\S+)", added.stdout)
        assert one_time is not None
        first = named.run(
            *("login", "hostile", "--server", site.address, "--password-stdin"),
            stdin=f"{one_time.group(1)}\nhostile's own password\nhostile's own password\n",
        )
        assert first.returncode == 0, first.stderr
        draft = site.case(draft_text=HOSTILE, status=CaseStatus.DRAFT)
        confirmed = site.case(draft_text="نص عادي", status=CaseStatus.DRAFT)
        sara = site.people["sara"]
        sara.ok("drafts", "confirm", confirmed, "--category", "billing", "--text", HOSTILE)
        sara.ok("cases", "escalate", confirmed, "--reason", HOSTILE)
        work_on(site, confirmed)
        sara.ok("cases", "resolve", confirmed, "--summary", HOSTILE)
        note = ("--method", "phone", "--result", "not-satisfied", "--note", HOSTILE)
        sara.ok("followup", "log", confirmed, *note)
        plant_legacy_rows(site, confirmed, "sara")
        yield Planted(site, draft, confirmed, named)


def assert_inert(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 0, no traceback, nothing a terminal acts on (the output is a pipe: Rich writes no
    styles of its own either), and the visible escapes in their place."""
    shown = result.stdout + result.stderr
    assert result.returncode == 0, shown
    assert "Traceback" not in shown
    for char in ("\x1b", "\x07", OVERRIDE, "\x9b"):
        assert char not in shown, (char, shown)
    return shown


def views(planted: Planted) -> list[tuple[Person, tuple[str, ...], tuple[str, ...]]]:
    """(who, command, what must be visible in what it prints)."""
    site = planted.site
    admin, sara = site.people["admin"], site.people["sara"]
    everything = (SHOWN_CLEAR, SHOWN_OVERRIDE)
    return [
        (admin, ("cases", "list"), (SHOWN_CLEAR,)),
        (admin, ("cases", "show", planted.draft), (MARKUP, LINK, SHOWN_TITLE, *everything)),
        (admin, ("cases", "show", planted.confirmed), (MARKUP, LINK, SHOWN_TITLE, *everything)),
        (admin, ("drafts", "list"), (MARKUP,)),
        (admin, ("agents", "list"), (MARKUP,)),
        (planted.named, ("whoami",), (MARKUP, LINK, SHOWN_TITLE, *everything)),
        (admin, ("callbacks", "list"), (MARKUP, SHOWN_CLEAR)),
        (sara, ("callbacks", "next"), (MARKUP, SHOWN_TITLE, *everything)),
        # Table cells are cut to the terminal's width (100 columns): their beginnings show.
        (admin, ("calls", "list"), (MARKUP, "[link=", "\\x1b]0;title")),
        (admin, ("audit", "list", "--limit", "400"), ()),
        (admin, ("report",), ()),
        (admin, ("status",), ()),
        (admin, ("qa", "report"), ()),
        (admin, ("qa", "sample", "--period", "7d", "--per-agent", "1"), ()),
    ]


def test_every_list_and_show_renders_stored_text_inert(planted: Planted) -> None:
    for person, command, visible in views(planted):
        shown = assert_inert(person.run(*command))
        for text in visible:
            assert text in shown, (command, text, shown)


def test_review_shows_a_hostile_draft_inert(planted: Planted) -> None:
    admin = planted.site.people["admin"]
    # Skip the draft then stop: it is rendered once, with its facts.
    shown = assert_inert(admin.run("review", stdin="s\ns\nq\n"))
    assert MARKUP in shown and SHOWN_TITLE in shown


def test_json_output_is_the_stored_text_unchanged(planted: Planted) -> None:
    site = planted.site
    admin, sara = site.people["admin"], site.people["sara"]
    case = json.loads(admin.ok("cases", "show", planted.confirmed, "--json").stdout)
    assert case["confirmed_text"] == HOSTILE
    assert case["caller_number"] == NUMBER_ESCAPES
    assert [item["notes"] for item in case["followups"]] == [HOSTILE]
    draft = json.loads(admin.ok("cases", "show", planted.draft, "--json").stdout)
    assert draft["draft_text"] == HOSTILE
    callbacks = json.loads(sara.ok("callbacks", "list", "--json").stdout)
    assert {(item["phone_number"], item["reason"]) for item in callbacks} == {
        (NUMBER_ESCAPES, REASON)
    }
    calls = json.loads(admin.ok("calls", "list", "--json").stdout)
    assert {call["caller_number"] for call in calls} == {NUMBER_LINK, NUMBER_ESCAPES}
    agents = json.loads(admin.ok("agents", "list", "--json").stdout)
    assert HOSTILE in {agent["display_name"] for agent in agents}
    audit = json.loads(admin.ok("audit", "list", "--json", "--limit", "400").stdout)
    assert HOSTILE in {(event["detail"] or {}).get("reason") for event in audit}
    # The JSON text itself writes them as escapes: printed, it is inert as well.
    assert_inert(admin.run("cases", "show", planted.confirmed, "--json"))
    assert "\\u001b]0;title\\u0007" in admin.ok("cases", "list", "--json").stdout


def test_a_refusal_that_echoes_typed_text_is_one_inert_line(planted: Planted) -> None:
    admin = planted.site.people["admin"]
    refused = admin.run("cases", "show", f"{CLEAR}{OVERRIDE}{TITLE}")
    assert refused.returncode == 1
    assert refused.stdout == "" and refused.stderr.count("\n") == 1
    for char in ("\x1b", "\x07", OVERRIDE):
        assert char not in refused.stderr


def read_terminal(person: Person, *args: str) -> str:
    """What ``hotline ARGS`` draws on a terminal (a pseudo-terminal, 100 columns): Rich styles
    and Arabic in visual order, as an agent sees it."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [HOTLINE, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=person.env(TERM="xterm-256color"),
        cwd=person.home,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120  # a safety net: the command takes a second
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(timeout=60) == 0, output
    return output.decode("utf-8")


def test_at_a_terminal_only_richs_own_styles_reach_it(planted: Planted) -> None:
    admin = planted.site.people["admin"]
    for command in (("cases", "show", planted.confirmed), ("callbacks", "list"), ("calls", "list")):
        drawn = read_terminal(admin, *command)
        # Rich's styles are SGR sequences (ESC [ ... m); nothing else starts with ESC.
        others = re.sub(r"\x1b\[[0-9;]*m", "", drawn)
        assert "\x1b" not in others and "\x07" not in others, others
        assert OVERRIDE not in drawn and "\x1b]8;" not in drawn  # no hyperlink either
        assert SHOWN_TITLE in others or command[0] == "calls"
