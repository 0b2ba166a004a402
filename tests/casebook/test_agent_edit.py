"""Editing an agent (issue 18, item 5): one set of checks for add and edit, admins only, every
change audited with what it was, and the site never left without an admin."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from sqlmodel import col, select

from casebook import agents
from casebook.db import Database
from casebook.errors import AccessDenied, CasebookError, RuleViolation
from casebook.models import Agent, AuditEvent
from hotline.app.config import Settings
from tests.conftest import Staff


def stored(db: Database, username: str) -> Agent:
    with db.session() as s:
        return s.exec(select(Agent).where(Agent.username == username)).one()


def entries(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        return list(s.exec(query))


def edit(
    db: Database, settings: Settings, staff: Staff, by: str, username: str, **changes: Any
) -> agents.EditedAgent:
    actor = staff.actor(by)
    return db.run(lambda s: agents.edit_agent(s, settings, actor, username, dict(changes)))


def test_an_admin_changes_only_the_details_named_and_the_audit_keeps_both_values(
    db: Database, settings: Settings, staff: Staff
) -> None:
    edited = edit(
        db,
        settings,
        staff,
        "admin",
        "carer",
        shift_days=["thu", "sun", "mon"],
        shift_start=time(8),
        shift_end=time(14),
        capacity=3,
        skills=["Billing", " billing "],
    )
    assert edited.changed == {
        "skills": [[], ["billing"]],
        "shift_days": [[], ["mon", "sun", "thu"]],
        "shift_start": [None, "08:00"],
        "shift_end": [None, "14:00"],
        "capacity": [None, 3],
    }
    carer = stored(db, "carer")
    assert (carer.department, carer.roles, carer.display_name) == (
        "customer-care",
        ["agent"],
        "Carer",
    )
    assert (carer.shift_start, carer.shift_end, carer.capacity) == (time(8), time(14), 3)
    [entry] = entries(db, "agent.edit")
    assert (entry.actor, entry.object_id, entry.allowed) == ("admin", "carer", True)
    assert entry.detail["changed"]["capacity"] == [None, 3]
    # Cleared: the site's business hours and capacity again.
    cleared = edit(
        db, settings, staff, "admin", "carer", shift_days=[], shift_start=None, shift_end=None
    )
    assert set(cleared.changed) == {"shift_days", "shift_start", "shift_end"}
    again = edit(db, settings, staff, "admin", "carer", capacity=3)
    assert again.changed == {}
    assert len(entries(db, "agent.edit")) == 2  # nothing changed, nothing to audit


def test_an_edit_is_checked_as_an_add_is_and_a_refused_one_changes_nothing(
    db: Database, settings: Settings, staff: Staff
) -> None:
    for changes, said in (
        ({"department": "nowhere"}, "unknown department 'nowhere'"),
        ({"roles": []}, "at least one role"),
        ({"roles": ["boss"]}, "unknown role: boss"),
        ({"shift_start": time(9)}, "both the shift start and end"),
        ({"shift_start": time(16), "shift_end": time(8)}, "start before it ends"),
        ({"capacity": 0}, "at least one callback"),
        ({"shift_days": ["someday"]}, "unknown shift day"),
        ({"password_hash": "x"}, "agents have no password_hash"),
        ({}, "nothing to change"),
    ):
        with pytest.raises(CasebookError, match=said):
            edit(db, settings, staff, "admin", "carer", **changes)
    assert entries(db, "agent.edit") == []
    assert stored(db, "carer").shift_start is None


def test_only_admins_edit_agents_and_the_refusal_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    with pytest.raises(AccessDenied, match="supervisor may not edit agents"):
        edit(db, settings, staff, "supervisor", "carer", roles=["supervisor"])
    [refused] = entries(db, "agent.edit")
    assert (refused.actor, refused.object_id, refused.allowed) == ("supervisor", "carer", False)
    assert stored(db, "carer").roles == ["agent"]


def test_the_last_admin_keeps_the_admin_role(
    db: Database, settings: Settings, staff: Staff
) -> None:
    with pytest.raises(RuleViolation, match="last active admin"):
        edit(db, settings, staff, "admin", "admin", roles=["supervisor"])
    staff.add("deputy", ["admin"], None)
    edit(db, settings, staff, "admin", "admin", roles=["supervisor"])
    assert stored(db, "admin").roles == ["supervisor"]
    # The role counts from the next request: the former admin may no longer edit.
    with pytest.raises(AccessDenied):
        edit(db, settings, staff, "admin", "carer", capacity=2)


def test_add_and_edit_store_the_same_cleaned_details(
    db: Database, settings: Settings, staff: Staff
) -> None:
    admin = staff.actor("admin")
    details = agents.AgentDetails(
        " Huda ", ("Agent",), skills=("Network", "network"), extension=" 204 ", shift_days=("SUN",)
    )
    db.run(lambda s: agents.add_agent(s, settings, admin, "huda", details))
    huda = stored(db, "huda")
    assert (huda.display_name, huda.roles, huda.skills, huda.extension, huda.shift_days) == (
        "Huda",
        ["agent"],
        ["network"],
        "204",
        ["sun"],
    )
    unchanged = edit(
        db, settings, staff, "admin", "huda", skills=["network"], extension="204", roles=["agent"]
    )
    assert unchanged.changed == {}
