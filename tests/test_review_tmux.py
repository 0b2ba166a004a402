"""A person at a real terminal (tmux, 80 columns) works through `hotline review`, signed in to a
running site (tests/site.py): edits a draft in $EDITOR and confirms it, plays the call while
reviewing, and keeps an edited text when the confirm cannot reach the server."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from casebook.models import CaseStatus
from tests.conftest import BACKENDS
from tests.site import HOTLINE, Person, Site, backend_url, running_site
from tests.tmux import Terminal, opened_terminal

pytestmark = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
SAID = "انقطاع الإنترنت منذ ثلاثة أيام"
EDITED = "انقطاع الهاتف منذ ثلاثة أيام"
WORDS = [("انقطاع", False), ("الإنترنت", True), ("منذ", False), ("ثلاثة", False), ("أيام", True)]
EDITOR = "sed -i s/الإنترنت/الهاتف/"


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("amal", ["agent"], "customer-care")
        yield running


@pytest.fixture(autouse=True)
def no_drafts_left(site: Site) -> Iterator[None]:
    """Each test starts with an empty queue: the drafts a test leaves are rejected."""
    yield
    site.reject_drafts_left()


def drafted(site: Site) -> tuple[str, Path]:
    """A complaint from the IVR whose message Whisper drafted (two words in doubt)."""
    return site.drafted_call(SAID, doubtful=[word for word, doubt in WORDS if doubt])


@pytest.fixture
def amal(site: Site) -> Person:
    return site.people["amal"]


@pytest.fixture
def desk(amal: Person) -> Path:
    """A folder of this test's own in amal's home (the site and amal are the module's): her
    player's bin, her TMPDIR and what the player heard."""
    return Path(tempfile.mkdtemp(prefix="desk-", dir=amal.home))


@pytest.fixture
def terminal(amal: Person, desk: Path) -> Iterator[Terminal]:
    """amal's terminal: her session, her editor, a player that copies what it plays."""
    bin_dir = desk / "bin"
    bin_dir.mkdir()
    player = bin_dir / "aplay"
    player.write_text(f'#!/bin/sh\nfor f; do :; done\ncp "$f" {desk}/heard.wav\n')
    player.chmod(0o755)
    (desk / "tmp").mkdir()
    env = amal.env(
        EDITOR=EDITOR,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        TMPDIR=str(desk / "tmp"),
        LOGNAME="root",  # changes nothing: amal is who her session says
        USER="root",
    )
    passed = ("EDITOR", "TMPDIR", "LOGNAME", "USER")
    with opened_terminal(env, amal.home, rows=40, passed=passed) as terminal:
        yield terminal


def test_an_agent_edits_and_confirms_a_draft_at_the_terminal(
    terminal: Terminal, site: Site
) -> None:
    reference, _ = drafted(site)
    terminal.type(f"{HOTLINE} review", "Enter")
    screen = terminal.wait_for("[a]ccept")
    assert reference in screen
    # Shown right to left: the first word of the draft is drawn at the right end of its line.
    line = next(row for row in screen.splitlines() if "ﻉﺎﻄﻘﻧﺍ" in row)
    assert line.rstrip().endswith("ﻉﺎﻄﻘﻧﺍ")
    terminal.type("e", "Enter")
    terminal.wait_for("ﻒﺗﺎﻬﻟﺍ")  # the edited word, shaped
    terminal.type("a", "Enter")
    terminal.wait_for("(category)")
    terminal.type("roads", "Enter")  # not one of the site's (the server's list): asked again
    terminal.wait_for("choose 1-")
    terminal.type("network", "Enter")
    terminal.wait_for("(department)")
    terminal.type("Enter")  # keep customer-care
    terminal.wait_for(f"case {reference} open")
    terminal.wait_for("no drafts waiting")

    case = site.stored_case(reference)
    assert (case.status, case.category) == (CaseStatus.OPEN, "network")
    assert case.confirmed_text == EDITED
    assert case.draft_text == SAID


def test_the_play_key_streams_the_call_through_the_server_and_plays_it(
    terminal: Terminal, site: Site, desk: Path
) -> None:
    reference, message = drafted(site)
    terminal.type(f"{HOTLINE} review; echo review-$((1 + 1))", "Enter")
    terminal.wait_for("[p]lay")
    terminal.type("p", "Enter")
    terminal.wait_for("(playing the call)")
    heard = desk / "heard.wav"
    deadline = time.monotonic() + 30
    while not heard.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert heard.read_bytes() == message.read_bytes()
    terminal.type("q", "Enter")
    terminal.wait_for("review-2")
    # The private copy went with the draft; the listen is on record, with why.
    assert list((desk / "tmp").iterdir()) == []
    events = json.loads(
        site.people["admin"].ok("audit", "list", "--object-type", "recording", "--json").stdout
    )
    plays = [(e["actor"], e["action"], e["detail"].get("why")) for e in events]
    assert ("amal", "recording.sent", f"review draft {reference}") in plays
    assert ("amal", "recording.played", f"review draft {reference}") in plays


def test_an_edited_text_survives_a_failed_confirm_and_is_offered_again(
    terminal: Terminal, site: Site, amal: Person
) -> None:
    reference, _ = drafted(site)
    terminal.type(f"{HOTLINE} review", "Enter")
    terminal.wait_for("[a]ccept")
    terminal.type("e", "Enter")
    terminal.wait_for("ﻒﺗﺎﻬﻟﺍ")
    terminal.type("a", "Enter")
    terminal.wait_for("(category)")
    site.stop()  # the server goes away while the agent chooses
    terminal.type("network", "Enter")
    terminal.wait_for("(department)")
    terminal.type("Enter")
    screen = terminal.wait_for("is not answering")
    assert "your edited text is kept in" in screen
    kept = amal.unsent_folder / f"{reference}.txt"
    assert kept.read_text(encoding="utf-8") == EDITED
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    site.start()
    terminal.type(f"clear; {HOTLINE} review", "Enter")
    terminal.wait_for("(an unsent edit from")
    terminal.type("Enter")  # yes, the default
    screen = terminal.wait_for("[a]ccept")
    assert "ﻒﺗﺎﻬﻟﺍ" in screen  # the kept text, not the draft
    terminal.type("a", "Enter")
    terminal.wait_for("(category)")
    terminal.type("network", "Enter")
    terminal.wait_for("(department)")
    terminal.type("Enter")
    terminal.wait_for(f"case {reference} open")
    assert site.stored_case(reference).confirmed_text == EDITED
    assert not kept.exists()


def test_the_keyed_number_and_the_numbers_said_are_shown_right_to_left(
    terminal: Terminal, site: Site
) -> None:
    reference, _ = site.drafted_call(
        "رقمي 0912 والمبلغ 50 دينار",
        keypad_number="0912345678",
        numbers=[("0912", "صفر تسعة واحد اتنين"), ("50", "خمسين")],
    )
    terminal.type(f"{HOTLINE} review", "Enter")
    screen = terminal.wait_for("[a]ccept")
    assert reference in screen
    rows = [row.rstrip() for row in screen.splitlines()]
    # "label: value" read from the right: the label at the right end, the number left of it.
    keyed = next(row for row in rows if "0912345678" in row)
    assert keyed.endswith("ﻂﺨﻟﺍ ﻭﺃ ﺏﺎﺴﺤﻟﺍ ﻢﻗﺭ") and keyed.lstrip().startswith("0912345678")
    # "0912 = صفر ...": the digits first for a right-to-left reader, at the right end, upright.
    said = next(row for row in rows if row.endswith("= 0912"))
    assert "ﺮﻔﺻ" in said
    assert any(row.endswith("= 50") and "ﻦﻴﺴﻤﺧ" in row for row in rows)
    terminal.type("q", "Enter")
