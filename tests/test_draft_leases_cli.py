"""Draft leases and the review's failures through the `hotline` command, against a running site
(tests/site.py): opening a draft in `hotline review` takes it for a while, not for ever; skip,
quit and Ctrl-C give it back; a draft someone else has open is refused to others in one line
naming them and until when, until a supervisor releases it; review sends the version it showed,
so a confirm decided on a draft changed meanwhile is refused; a failed editor leaves the agent
at the draft with its text."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlmodel

from casebook.models import Agent, CaseStatus
from tests.conftest import BACKENDS
from tests.site import HOTLINE, Person, Site, backend_url, running_site

DRAFT = "الفاتورة غير صحيحة هذا الشهر"
WAIT_SECONDS = 60.0  # a safety net: a command opens a draft in a second or two


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """Two agents of customer care (amal, omar) and their supervisor (salem)."""
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("amal", ["agent"], "customer-care")
        running.add_agent("omar", ["agent"], "customer-care")
        running.add_agent("salem", ["supervisor"], "customer-care")
        yield running


def draft(site: Site) -> str:
    return site.case(status=CaseStatus.DRAFT, draft_text=DRAFT)


def holder_id(site: Site, reference: str) -> int | None:
    return site.stored_case(reference).draft_lease_agent_id


def reviewing(person: Person) -> subprocess.Popen[str]:
    """`hotline review` at the first draft's prompt, waiting for what the test types."""
    process = subprocess.Popen(
        [HOTLINE, "review"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=person.env(),
        cwd=person.home,
    )
    assert process.stdout is not None
    shown = b""
    deadline = time.monotonic() + WAIT_SECONDS
    while b"[a]ccept" not in shown:
        assert time.monotonic() < deadline and process.poll() is None, shown.decode()
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            shown += os.read(process.stdout.fileno(), 65536)
    return process


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture(autouse=True)
def no_drafts_left(site: Site) -> Iterator[None]:
    """Each test starts with an empty queue: the drafts a test leaves are rejected."""
    yield
    site.reject_drafts_left()


@pytest.mark.parametrize("key", ["s", "q"])
def test_skip_and_quit_give_the_draft_back(site: Site, key: str) -> None:
    reference = draft(site)
    amal, omar = site.people["amal"], site.people["omar"]
    left = amal.run("review", stdin=f"{key}\n")
    assert left.returncode == 0, left.stderr
    assert holder_id(site, reference) is None
    omar.ok("drafts", "confirm", reference, "--category", "billing")
    assert site.stored_case(reference).status == CaseStatus.OPEN


def test_ctrl_c_in_review_gives_the_draft_back(site: Site) -> None:
    reference = draft(site)
    process = reviewing(site.people["amal"])
    assert holder_id(site, reference) == agent_id(site, "amal")
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=WAIT_SECONDS)
    assert "Traceback" not in errors
    assert holder_id(site, reference) is None


def test_a_draft_someone_has_open_is_refused_to_others_until_a_supervisor_releases_it(
    site: Site,
) -> None:
    reference = draft(site)
    omar, salem = site.people["omar"], site.people["salem"]
    crashed = reviewing(site.people["amal"])
    assert holder_id(site, reference) == agent_id(site, "amal")
    crashed.kill()  # amal's terminal dies: nothing gives the draft back but time or salem
    crashed.communicate(timeout=WAIT_SECONDS)

    taken = f"draft {reference} is being reviewed by amal until "
    assert taken in one_line(omar.run("drafts", "reject", reference, "--reason", "not mine"))
    assert taken in one_line(omar.run("drafts", "confirm", reference, "--category", "billing"))
    assert taken in one_line(salem.run("drafts", "confirm", reference, "--category", "billing"))
    assert site.stored_case(reference).status == CaseStatus.DRAFT
    # Not offered in omar's queue; listed as amal's.
    assert "no drafts waiting" in omar.ok("review", stdin="q\n").stdout
    [listed] = json.loads(omar.ok("drafts", "list", "--json").stdout)
    assert (listed["reference"], listed["leased_to"]) == (reference, "amal")
    assert "amal" in omar.ok("drafts", "list").stdout
    # An agent may not release it; a supervisor may, and it is on record.
    assert taken in one_line(omar.run("drafts", "release", reference))
    released = salem.ok("drafts", "release", reference)
    assert f"draft {reference} released from amal's review" in released.stdout
    events = json.loads(
        site.people["admin"].ok("audit", "list", "--object-type", "case", "--json").stdout
    )
    releases = [e for e in events if e["action"] == "draft.release" and e["object_id"] == reference]
    assert [(e["actor"], e["detail"]["holder"]) for e in releases] == [("salem", "amal")]
    omar.ok("drafts", "confirm", reference, "--category", "billing")
    case = site.stored_case(reference)
    assert (case.status, case.confirmed_text, case.assigned_agent_id) == ("open", DRAFT, None)


def test_a_confirm_in_review_decided_on_a_draft_confirmed_meanwhile_is_refused(
    site: Site,
) -> None:
    """amal has the draft open in review; salem releases her lease and confirms it as it
    stands; amal's confirm, decided on the draft she was shown, is refused naming salem's."""
    reference = draft(site)
    salem = site.people["salem"]
    amal = reviewing(site.people["amal"])
    salem.ok("drafts", "release", reference)
    salem.ok("drafts", "confirm", reference, "--category", "network")
    said, errors = amal.communicate("a\n1\n\n", timeout=WAIT_SECONDS)
    assert "Traceback" not in errors
    assert f"case {reference} changed meanwhile: confirmed by salem at " in errors
    # Said, and on to the next draft: none is left, so the review ends as a review does.
    assert amal.returncode == 0 and "no drafts waiting" in said
    assert "(now open); reload and try again" in errors
    case = site.stored_case(reference)
    assert (case.category, case.confirmed_by_id) == ("network", agent_id(site, "salem"))


def agent_id(site: Site, username: str) -> int:
    with site.database() as (db, _settings), db.session() as session:
        agent = session.exec(sqlmodel.select(Agent).where(Agent.username == username)).one()
        assert agent.id is not None
        return agent.id


def editor_script(home: Path, name: str, body: str) -> str:
    script = home / name
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


EDITORS: dict[str, Callable[[Path], str]] = {
    "false": lambda home: "false",
    "not installed": lambda home: "/nonexistent/editor",
    "vim :cq": lambda home: editor_script(home, "cq", 'echo "half typed" > "$1"; exit 1'),
    "not utf-8": lambda home: editor_script(home, "latin", "printf 'caf\\351\\n' > \"$1\""),
    "file removed": lambda home: editor_script(home, "rm", 'rm "$1"'),
}


@pytest.mark.parametrize("editor", EDITORS)
def test_a_failed_editor_leaves_the_agent_at_the_draft_with_its_text(
    site: Site, editor: str
) -> None:
    reference = draft(site)
    amal = site.people["amal"]
    command = EDITORS[editor](amal.home)
    # Edit (fails), then accept what is shown: the first category, the department as it is.
    result = amal.run("review", stdin="e\na\n1\n\n", env=amal.env(EDITOR=command))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "the text is as it was" in line]
    assert len(failed) == 1 and failed[0].startswith("error: "), result.stderr
    assert f"case {reference} open" in result.stdout
    case = site.stored_case(reference)
    assert (case.status, case.confirmed_text) == ("open", DRAFT)
