"""Case work through the API (issue 18): start, take and assign, notes, reopen, the case's
story in `GET /v1/cases/REF` (user names, never agent ids), and `GET /v1/recordings`."""

from __future__ import annotations

from typing import Any

from casebook.models import CaseStatus
from tests.api.conftest import ApiSite, unique
from tests.recordings.helpers import recorded_call, reference_of


def test_an_open_case_is_started_then_resolved(api_site: ApiSite) -> None:
    """The defect "no way to start work": resolve refused an open case and nothing moved it."""
    reference = api_site.case(department="billing")
    biller = api_site.client("biller")
    refused = biller.post(f"/v1/cases/{reference}/resolve", {"summary": "refunded"})
    assert (refused.status, refused.error["code"]) == (409, "conflict")
    version = api_site.stored_case(reference).version
    started = biller.post(f"/v1/cases/{reference}/start", {"version": version})
    assert started.status == 200, started.body
    assert (started.json()["status"], started.json()["version"]) == ("in_progress", version + 1)
    stale = biller.post(f"/v1/cases/{reference}/start", {"version": version})
    assert (stale.status, stale.error["code"]) == (409, "conflict")
    assert "taken into work by biller" in stale.error["error"]
    resolved = biller.post(f"/v1/cases/{reference}/resolve", {"summary": "refunded"})
    assert resolved.status == 200 and resolved.json()["status"] == "resolved"
    assert api_site.stored_case(reference).escalation_level == 0


def test_take_assign_and_reassign(api_site: ApiSite) -> None:
    reference = api_site.case(department="customer-care")
    carer = api_site.client("carer")
    refused = carer.post(f"/v1/cases/{reference}/assign", {"to": "supervisor"})
    assert (refused.status, refused.error["code"]) == (403, "denied")
    taken = carer.post(f"/v1/cases/{reference}/assign", {"to": "carer"})
    assert taken.status == 200 and taken.json()["assigned_to"] == "carer"
    other = api_site.add_agent(["agent"], "customer-care")
    moved = api_site.client("supervisor").post(
        f"/v1/cases/{reference}/assign",
        {"to": other, "version": taken.json()["version"]},
    )
    assert moved.status == 200, moved.body
    assert api_site.stored_case(reference).assigned_agent_id == api_site.agent(other).id
    unknown = api_site.client("supervisor").post(f"/v1/cases/{reference}/assign", {"to": "nobody"})
    assert (unknown.status, unknown.error["code"]) == (404, "not_found")
    typo = api_site.client("supervisor").post(f"/v1/cases/{reference}/assign", {"too": "x"})
    assert (typo.status, typo.error["code"]) == (400, "invalid")


def test_a_supervisor_reopens_a_closed_case_with_a_reason(api_site: ApiSite) -> None:
    reference = api_site.case(department="customer-care", status=CaseStatus.CLOSED)
    carer = api_site.client("carer")
    started = carer.post(f"/v1/cases/{reference}/start")
    assert (started.status, started.error["code"]) == (400, "refused")
    assert "a supervisor reopens it" in started.error["error"]
    denied = carer.post(f"/v1/cases/{reference}/reopen", {"reason": "عاد الانقطاع"})
    assert (denied.status, denied.error["code"]) == (403, "denied")
    supervisor = api_site.client("supervisor")
    no_reason = supervisor.post(f"/v1/cases/{reference}/reopen", {})
    assert (no_reason.status, no_reason.error["code"]) == (400, "invalid")
    reopened = supervisor.post(f"/v1/cases/{reference}/reopen", {"reason": "عاد الانقطاع"})
    assert reopened.status == 200 and reopened.json()["status"] == "in_progress"
    history = supervisor.get(f"/v1/cases/{reference}").json()["history"]
    assert history[-1]["by"] == "supervisor"
    assert history[-1]["detail"] == {"from": "closed", "reopened": True, "reason": "عاد الانقطاع"}
    assert history[-1]["status_label_ar"] == "قيد المعالجة"


def test_notes_are_added_bounded_and_shown_inert_data(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing")
    biller = api_site.client("biller")
    text = "اتصل العميل\x1b[31m مرة أخرى"
    added = biller.post(f"/v1/cases/{reference}/notes", {"text": text})
    assert added.status == 201, added.body
    assert (added.json()["by"], added.json()["text"]) == ("biller", text)
    assert b"\x1b" not in added.body  # the body is inert; the value is as stored
    too_long = biller.post(f"/v1/cases/{reference}/notes", {"text": "x" * 4_001})
    assert (too_long.status, too_long.error["code"]) == (400, "refused")
    empty = biller.post(f"/v1/cases/{reference}/notes", {"text": " "})
    assert empty.status == 400
    elsewhere = api_site.client("carer").post(f"/v1/cases/{reference}/notes", {"text": "x"})
    assert elsewhere.status == 403
    notes = biller.get(f"/v1/cases/{reference}").json()["notes"]
    assert [(n["by"], n["text"]) for n in notes] == [("biller", text)]


def test_the_story_names_people_and_has_every_part(api_site: ApiSite) -> None:
    """The defect "cases show hides the story": summary, close reason, history with who and
    when, follow-ups, callbacks and recordings with ids; user names, no agent ids."""
    recording = recorded_call(api_site.db, api_site.settings, unique("story"))
    reference = reference_of(api_site.db, recording)
    assert reference is not None  # an open case of customer-care, the intake department
    supervisor = api_site.client("supervisor")
    assert supervisor.post(f"/v1/cases/{reference}/assign", {"to": "carer"}).status == 200
    carer = api_site.client("carer")
    assert carer.post(f"/v1/cases/{reference}/start").status == 200
    assert carer.post(f"/v1/cases/{reference}/resolve", {"summary": "أعيد المبلغ"}).status == 200
    logged = carer.post(
        f"/v1/cases/{reference}/followups", {"method": "phone", "result": "no-answer"}
    )
    assert logged.status == 201
    closed = supervisor.post(f"/v1/cases/{reference}/close", {"reason": "لا رد بعد ثلاث محاولات"})
    assert closed.status == 200, closed.body

    story: dict[str, Any] = carer.get(f"/v1/cases/{reference}").json()
    assert (story["assigned_to"], story["resolution_summary"]) == ("carer", "أعيد المبلغ")
    assert story["close_reason"] == "لا رد بعد ثلاث محاولات"
    steps = [(step["by"], step["action"]) for step in story["history"]]
    assert steps[-5:] == [
        ("supervisor", "case.assign"),
        ("carer", "case.in_progress"),
        ("carer", "case.resolved"),
        ("carer", "case.follow_up"),
        ("supervisor", "case.closed"),
    ]
    assert all(step["at"] for step in story["history"])
    assert [(f["by"], f["result"]) for f in story["followups"]] == [("carer", "no_answer")]
    assert story["followups"][0]["id"] > 0
    assert story["callbacks"] and all(c["id"] > 0 for c in story["callbacks"])
    assert [r["id"] for r in story["recordings"]] == [recording.id]
    assert story["recordings"][0] | {"created_at": None} == {
        "id": recording.id,
        "kind": "call",
        "kind_label_ar": "مكالمة",
        "duration_seconds": recording.duration_seconds,
        "created_at": None,
        "deleted_at": None,
        "case": reference,
        "agent": "carer",
    }
    # No internal id of an agent anywhere in the answer.
    assert not any(key.endswith("agent_id") or key.endswith("_by_id") for key in flat_keys(story))


def flat_keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {key for value in data.values() for key in flat_keys(value)}
    if isinstance(data, list):
        return {key for item in data for key in flat_keys(item)}
    return set()


def test_recordings_list_follows_the_playing_rule(api_site: ApiSite) -> None:
    """The defect "no way to find a case's recordings"."""
    carer_id = api_site.agent("carer").id
    mine = recorded_call(api_site.db, api_site.settings, unique("mine"), agent_id=carer_id)
    theirs = recorded_call(api_site.db, api_site.settings, unique("theirs"))
    carer = api_site.client("carer")
    listed = carer.get("/v1/recordings?limit=10000")
    assert listed.status == 200
    ids = {row["id"] for row in listed.json()["recordings"]}
    assert mine.id in ids and theirs.id not in ids
    everything = {
        row["id"] for row in api_site.client("qa").get("/v1/recordings").json()["recordings"]
    }
    assert {mine.id, theirs.id} <= everything
    by_case = api_site.client("qa").get(f"/v1/recordings?case={reference_of(api_site.db, mine)}")
    assert [row["id"] for row in by_case.json()["recordings"]] == [mine.id]
    assert by_case.json()["recordings"][0]["agent"] == "carer"
    refused = api_site.client("biller").get(
        f"/v1/recordings?case={reference_of(api_site.db, mine)}"
    )
    assert (refused.status, refused.error["code"]) == (403, "denied")


def test_the_story_names_the_codes_its_changes_chose_in_arabic(api_site: ApiSite) -> None:
    """A confirmation's category and department and a re-routing's departments read in Arabic
    beside their codes, as every other coded field does (the history showed `billing`)."""
    reference = api_site.case(department="customer-care", status=CaseStatus.DRAFT)
    carer = api_site.client("carer")
    assert carer.get(f"/v1/drafts/{reference}").status == 200
    confirmed = carer.post(f"/v1/drafts/{reference}/confirm", {"category": "network"})
    assert confirmed.status == 200, confirmed.body
    assert carer.post(f"/v1/cases/{reference}/start").status == 200
    assert carer.post(f"/v1/cases/{reference}/resolve", {"summary": "أعيد المبلغ"}).status == 200
    rerouted = carer.post(
        f"/v1/cases/{reference}/followups",
        {"method": "phone", "result": "not-satisfied", "reroute": "billing"},
    )
    assert rerouted.status == 201, rerouted.body

    history = api_site.client("supervisor").get(f"/v1/cases/{reference}").json()["history"]
    details = {step["action"]: step["detail"] for step in history}
    assert details["case.open"]["category_label_ar"] == "الشبكة"
    assert details["case.open"]["department_label_ar"] == "خدمة العملاء"
    assert details["case.reroute"] == {
        "from": "customer-care",
        "to": "billing",
        "from_label_ar": "خدمة العملاء",
        "to_label_ar": "الفواتير",
    }
