"""Draft leases (casebook.drafts, casebook.draft_leases): opening a draft takes it for
``drafts.lease_minutes``, renewed while the agent works, given back on release or when it runs
out; while one agent holds it every other change of it is refused, naming them and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from casebook import cases, drafts
from casebook.access import Actor
from casebook.db import Database
from casebook.errors import Conflict, RuleViolation, Taken
from casebook.models import AuditEvent, Case
from hotline.app.config import Settings
from tests.conftest import Staff

T0 = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
UNTIL = "draft {ref} is being reviewed by carer until 2026-12-10 09:10"


def new_draft(db: Database, settings: Settings) -> str:
    case = db.run(
        lambda s: cases.register_complaint(
            s, settings, Actor.system("ivr"), caller_number="0910000001", draft_text="الماء مقطوع"
        )
    )
    assert case.reference is not None
    return case.reference


def stored(db: Database, reference: str) -> Case:
    with db.session() as session:
        return session.exec(select(Case).where(Case.reference == reference)).one()


def log_of(db: Database, reference: str, prefix: str = "draft.") -> list[AuditEvent]:
    with db.session() as session:
        query = (
            select(AuditEvent)
            .where(AuditEvent.object_id == reference)
            .where(col(AuditEvent.action).startswith(prefix))
            .order_by(col(AuditEvent.id))
        )
        return list(session.exec(query))


@pytest.fixture
def opened(db: Database, settings: Settings, staff: Staff) -> str:
    """A draft carer opened at T0 (the default lease: 10 minutes)."""
    reference = new_draft(db, settings)
    carer = staff.actor("carer")
    db.run(lambda s: drafts.open_draft(s, settings, carer, reference, now=T0))
    return reference


def test_opening_a_draft_leases_it_for_the_configured_time_not_for_ever(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    case = stored(db, opened)
    assert case.draft_lease_agent_id == staff.actor("carer").agent_id
    assert case.draft_lease_until == T0 + timedelta(minutes=settings.drafts.lease_minutes)
    assert case.assigned_agent_id is None
    [taken] = log_of(db, opened)
    assert (taken.actor, taken.action) == ("carer", "draft.take")


def test_every_change_of_a_draft_another_agent_holds_is_refused_naming_them(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    line = UNTIL.format(ref=opened)
    omar_like = staff.actor("supervisor")  # a supervisor too: the lease binds everyone
    changes = [
        lambda s: drafts.open_draft(s, settings, omar_like, opened, now=T0),
        lambda s: drafts.renew_lease(s, settings, omar_like, opened, now=T0),
        lambda s: drafts.confirm_reviewed(
            s, settings, omar_like, opened, text=None, category="service", now=T0
        ),
        lambda s: cases.reject_draft(s, omar_like, opened, reason="not a complaint", now=T0),
    ]
    for change in changes:
        with pytest.raises(Taken) as refused:
            db.run(change)
        assert line in str(refused.value)
    # Said in the site's time where a person reads it.
    tripoli = settings.business_hours.zone
    assert "until 11:10" in refused.value.line(tripoli, now=T0)
    case = stored(db, opened)
    assert (case.status, case.draft_lease_agent_id) == ("draft", staff.actor("carer").agent_id)


def test_an_agent_cannot_reject_or_release_another_agents_draft(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    staff.add("omar", ["agent"], "customer-care")
    omar = staff.actor("omar")
    with pytest.raises(Taken, match="reviewed by carer"):
        db.run(lambda s: cases.reject_draft(s, omar, opened, reason="wrong number", now=T0))
    with pytest.raises(Taken, match="reviewed by carer"):
        db.run(lambda s: drafts.release_lease(s, omar, opened, now=T0))
    assert stored(db, opened).status == "draft"


def test_the_queue_skips_drafts_others_hold_and_lists_them_as_taken_when_asked(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    staff.add("omar", ["agent"], "customer-care")
    omar, carer = staff.actor("omar"), staff.actor("carer")
    free = new_draft(db, settings)

    def queue(actor: Actor, *, taken: bool = False, now: datetime = T0) -> list[tuple[str, str]]:
        listed = db.run(lambda s: drafts.draft_queue(s, actor, taken=taken, now=now))
        return [(d.case.reference or "", d.lease.holder if d.lease else "") for d in listed]

    assert queue(omar) == [(free, "")]
    assert queue(carer) == [(opened, "carer"), (free, "")]
    assert queue(omar, taken=True) == [(opened, "carer"), (free, "")]
    # Run out: free again, for everyone, without anything having to run.
    assert queue(omar, now=T0 + timedelta(minutes=11)) == [(opened, ""), (free, "")]


def test_a_lease_that_ran_out_is_free_and_its_take_over_is_audited(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    staff.add("omar", ["agent"], "customer-care")
    omar = staff.actor("omar")
    later = T0 + timedelta(minutes=10, seconds=1)
    db.run(lambda s: drafts.open_draft(s, settings, omar, opened, now=later))
    assert stored(db, opened).draft_lease_agent_id == omar.agent_id
    took = log_of(db, opened)[-1]
    assert (took.actor, took.action) == ("omar", "draft.take")
    assert took.detail["ran_out"]["holder"] == "carer"
    # carer, back at the desk, is now the one refused.
    with pytest.raises(Taken, match="reviewed by omar until"):
        db.run(lambda s: drafts.renew_lease(s, settings, staff.actor("carer"), opened, now=later))


def test_renewing_moves_the_end_on_and_needs_the_version_the_agent_has(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    carer = staff.actor("carer")
    version = stored(db, opened).version
    later = T0 + timedelta(minutes=8)
    case, lease = db.run(
        lambda s: drafts.renew_lease(s, settings, carer, opened, now=later, seen_version=version)
    )
    assert lease.until == later + timedelta(minutes=10)
    assert case.version == version + 1
    assert log_of(db, opened)[-1].action == "draft.renew"
    with pytest.raises(Conflict, match="changed meanwhile: kept under review by carer"):
        db.run(lambda s: drafts.renew_lease(s, settings, carer, opened, now=later, seen_version=1))


def test_the_holder_or_a_supervisor_releases_it_and_the_release_is_audited(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    supervisor = staff.actor("supervisor")
    case, lease = db.run(lambda s: drafts.release_lease(s, supervisor, opened, now=T0))
    assert (case.draft_lease_agent_id, case.draft_lease_until, lease.holder) == (
        None,
        None,
        "carer",
    )
    released = log_of(db, opened)[-1]
    assert (released.actor, released.action) == ("supervisor", "draft.release")
    assert (released.detail["holder"], released.detail["ran_out"]) == ("carer", False)
    with pytest.raises(RuleViolation, match="not taken by anyone"):
        db.run(lambda s: drafts.release_lease(s, supervisor, opened, now=T0))
    # Now anyone of the department may work it; the holder's own release works the same way.
    carer = staff.actor("carer")
    db.run(lambda s: drafts.open_draft(s, settings, staff.actor("supervisor"), opened, now=T0))
    with pytest.raises(Taken, match="reviewed by supervisor"):
        db.run(
            lambda s: drafts.confirm_reviewed(
                s, settings, carer, opened, text=None, category="service", now=T0
            )
        )
    db.run(lambda s: drafts.release_lease(s, supervisor, opened, now=T0))
    db.run(lambda s: drafts.open_draft(s, settings, carer, opened, now=T0))
    db.run(lambda s: drafts.release_lease(s, carer, opened, now=T0))
    assert stored(db, opened).draft_lease_agent_id is None


def test_confirming_or_rejecting_ends_the_lease(
    db: Database, settings: Settings, staff: Staff, opened: str
) -> None:
    carer = staff.actor("carer")
    confirmed = db.run(
        lambda s: drafts.confirm_reviewed(
            s, settings, carer, opened, text=None, category="service", now=T0
        )
    )
    assert (confirmed.status, confirmed.draft_lease_agent_id, confirmed.draft_lease_until) == (
        "open",
        None,
        None,
    )
    other = new_draft(db, settings)
    db.run(lambda s: drafts.open_draft(s, settings, carer, other, now=T0))
    rejected = db.run(lambda s: cases.reject_draft(s, carer, other, reason="wrong number", now=T0))
    assert (rejected.status, rejected.draft_lease_agent_id) == ("rejected", None)
    with pytest.raises(RuleViolation, match="not a draft"):
        db.run(lambda s: drafts.release_lease(s, carer, other, now=T0))
