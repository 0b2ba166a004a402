"""`hotline callbacks` through the server (issue 18, "callbacks pile up"): one open follow-up
callback per case however often it is resolved; the list names the case, the caller and the
agent; `next` says why nothing is offered; `dial` refuses at once, without the PBX, when the
agent has no extension."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, col, func, select

from casebook.clock import utcnow
from casebook.models import Agent, Callback, CallbackReason, CallbackStatus, CaseStatus
from tests.conftest import BACKENDS
from tests.site import Site, backend_url, running_site


@pytest.fixture(scope="module")
def silent_pbx() -> Iterator[socket.socket]:
    """Where the site's AMI points: it listens and never answers, and counts who connected."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, silent_pbx: socket.socket) -> Iterator[Site]:
    url = backend_url(request)
    ami = {"port": silent_pbx.getsockname()[1], "connect_timeout": 5.0}
    with running_site(url, sections={"ami": ami}) as running:
        running.add_agent("sara", ["agent"], "billing", extension="201")
        running.add_agent("nour", ["agent"], "billing")  # no phone extension
        running.add_agent("salem", ["supervisor"], "billing")
        yield running


def listed(site: Site, reference: str) -> list[dict[str, object]]:
    rows = json.loads(site.people["admin"].ok("callbacks", "list", "--json").stdout)
    return [row for row in rows if row["case"] == reference]


def test_a_case_resolved_four_times_has_one_open_callback(site: Site) -> None:
    sara = site.people["sara"]
    reference = site.case("billing", status=CaseStatus.IN_PROGRESS)
    sara.ok("cases", "resolve", reference, "--summary", "أعيد ضبط الفاتورة")
    for _ in range(3):
        sara.ok("followup", "log", reference, "--method", "phone", "--result", "not-satisfied")
        sara.ok("cases", "resolve", reference, "--summary", "محاولة أخرى")
    (row,) = listed(site, reference)
    assert (row["status"], row["attempts"], row["agent"]) == ("pending", 0, None)
    shown = site.people["admin"].ok("callbacks", "list").stdout
    line = next(line for line in shown.splitlines() if reference in line)
    assert "0912345678" in line  # the caller, whole, beside the reference
    # Closed by a supervisor: nothing is left to call.
    site.people["salem"].ok("cases", "close", reference, "--reason", "أغلقت بعد التصعيد")
    assert listed(site, reference) == []
    with site.database() as (db, _), db.session() as s:
        query = select(Callback.status, Callback.cancel_reason).order_by(col(Callback.id))
        mine = [row for row in s.exec(query) if row[1] is not None]
    assert mine[-1] == ("cancelled", "case closed")


def waiting_due(site: Site, count: int) -> int:
    """``count`` abandoned-call callbacks due and unassigned; how many wait in all."""
    now = utcnow()

    def work(s: Session) -> int:
        for n in range(count):
            s.add(
                Callback(
                    phone_number=f"092000000{n}",
                    reason=CallbackReason.ABANDONED.value,
                    department="billing",
                    due_from=now - timedelta(hours=1),
                    overdue_at=now + timedelta(days=1),
                )
            )
        s.flush()
        query = select(func.count()).where(
            Callback.status == CallbackStatus.PENDING.value, col(Callback.due_from) <= now
        )
        return int(s.exec(query).one())

    with site.database() as (db, _):
        return db.run(work)


def test_next_says_the_scheduler_is_not_running_and_how_many_wait(site: Site) -> None:
    """Issue 18: "no callbacks for you now" while five waited because no scheduler ran."""
    waiting = waiting_due(site, 5)
    shown = site.people["sara"].ok("callbacks", "next").stdout
    assert "المُجدول" in shown
    assert f"the scheduler has never run; {waiting} callbacks wait unassigned" in shown
    offer = json.loads(site.people["sara"].ok("callbacks", "next", "--json").stdout)
    assert offer["callback"] is None and offer["reasons"][0] == "no_scheduler"
    assert offer["waiting"] == waiting


def test_dial_without_an_extension_fails_at_once_without_the_pbx(
    site: Site, silent_pbx: socket.socket
) -> None:
    """Issue 18: it spent 20 s retrying the AMI before it looked at the extension."""
    now = utcnow()

    def work(s: Session) -> int:
        nour = s.exec(select(Agent).where(Agent.username == "nour")).one()
        callback = Callback(
            phone_number="0930000003",
            reason=CallbackReason.ABANDONED.value,
            department="billing",
            due_from=now,
            overdue_at=now + timedelta(days=1),
            status=CallbackStatus.ASSIGNED.value,
            assigned_agent_id=nour.id,
        )
        s.add(callback)
        s.flush()
        return callback.id or 0

    with site.database() as (db, _):
        callback_id = db.run(work)
    started = time.monotonic()
    refused = site.people["nour"].run("callbacks", "dial", str(callback_id))
    assert time.monotonic() - started < 10  # the CLI's start, not the AMI's 3 x 5 s
    assert refused.returncode == 1
    assert (
        refused.stderr == "refused: nour has no phone extension to ring (agents add --extension)\n"
    )
    with pytest.raises(BlockingIOError):
        silent_pbx.accept()  # nobody connected
