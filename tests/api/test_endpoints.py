"""Every endpoint of the contract answers as documented, thin over its service: cases,
follow-ups, drafts, callbacks (dialled through the PBX simulator), figures, QA, the audit log,
agents; and bad requests are one line."""

from __future__ import annotations

import json
import socket
from datetime import time, timedelta
from time import monotonic
from urllib.parse import urlencode

import pytest
from sqlmodel import Session, select

from casebook import cases as case_service
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.models import (
    Callback,
    CallbackReason,
    CallbackStatus,
    Case,
    CaseStatus,
    RecordingKind,
    Transcript,
)
from hotline.simulator import PbxSimulator
from tests.api.conftest import ApiSite, unique
from tests.api.unix_http import UnixHTTPConnection
from tests.recordings.helpers import recorded_call, reference_of

CASE_KEYS = {
    "reference",
    "status",
    "status_label_ar",
    "category",
    "priority",
    "department",
    "caller_number",
    "keypad_number",
    "created_at",
    "promised_by",
    "escalation_level",
    "draft_text",
    "draft_state",
    "confirmed_text",
    "version",
    # Every coded field's Arabic name beside it (casebook.labels).
    "category_label_ar",
    "priority_label_ar",
    "department_label_ar",
    "draft_state_label_ar",
}
# What `cases show` adds to a case (README: "cases show --json"): people by user name.
STORY_KEYS = {
    "assigned_to",
    "confirmed_by",
    "confirmed_at",
    "resolution_summary",
    "resolved_at",
    "close_reason",
    "closed_at",
    "history",
    "followups",
    "callbacks",
    "recordings",
    "notes",
}
CALLBACK_KEYS = {
    "id",
    "reason",
    "phone_number",
    "status",
    "due_from",
    "overdue_at",
    "attempts",
    "last_result",
    "department",
    "cancel_reason",
    "cancelled_at",
    "version",
    "status_label_ar",
    "reason_label_ar",
    "department_label_ar",
    "last_result_label_ar",
    "case",
    "agent",
}


def offset_of(api_site: ApiSite) -> str:
    return utcnow().astimezone(api_site.settings.business_hours.zone).isoformat()[-6:]


# --- cases and follow-ups ----------------------------------------------------------------------


def test_cases_list_and_show_only_what_the_agent_may_see(api_site: ApiSite) -> None:
    mine = api_site.case(department="billing")
    theirs = api_site.case(department="customer-care")
    listed = api_site.client("biller").get("/v1/cases?limit=500")
    assert listed.status == 200
    rows = listed.json()["cases"]
    references = {row["reference"] for row in rows}
    assert mine in references and theirs not in references
    assert all(set(row) == CASE_KEYS for row in rows)
    row = next(row for row in rows if row["reference"] == mine)
    assert row["status_label_ar"] == "مفتوحة"
    assert row["created_at"].endswith(offset_of(api_site))

    shown = api_site.client("biller").get(f"/v1/cases/{mine}")
    assert shown.status == 200
    assert set(shown.json()) == CASE_KEYS | STORY_KEYS
    refused = api_site.client("biller").get(f"/v1/cases/{theirs}")
    assert (refused.status, refused.error["code"]) == (403, "denied")
    missing = api_site.client("biller").get("/v1/cases/999999999")
    assert missing.status in (404,) and missing.error["code"] == "not_found"


def test_cases_filtered_by_status_and_department(api_site: ApiSite) -> None:
    escalated = api_site.case(department="technical", status=CaseStatus.ESCALATED)
    answer = api_site.client("supervisor").get(
        "/v1/cases?status=escalated&department=technical&limit=10"
    )
    assert answer.status == 200
    assert [row["reference"] for row in answer.json()["cases"]] == [escalated]
    bad = api_site.client("supervisor").get("/v1/cases?status=sleeping")
    assert (bad.status, bad.error["code"]) == (400, "invalid")
    assert "status" in bad.error["error"]


def confirmed_case(api_site: ApiSite, text: str, department: str = "billing") -> str:
    """A draft confirmed (its words indexed) as an agent of any department would."""
    reference = api_site.case(department=department, status=CaseStatus.DRAFT, draft_text=text)
    api_site.db.run(
        lambda s: case_service.confirm_draft(
            s,
            api_site.settings,
            Actor.system("test"),
            reference,
            text=text,
            category="network",
            department=department,
        )
    )
    return reference


def test_cases_searched_by_words_and_caller_page_by_page(api_site: ApiSite) -> None:
    word = unique("ولاية")  # a word no other test's case holds
    made = [confirmed_case(api_site, f"الفاتورةُ مرتفعة في {word}") for _ in range(3)]
    biller = api_site.client("biller")
    query = urlencode({"words": f"فاتوره {word}", "caller_number": "+218912345678", "limit": 2})
    first = biller.get(f"/v1/cases?{query}")
    assert first.status == 200
    page = first.json()
    assert [row["reference"] for row in page["cases"]] == made[:0:-1]
    assert (page["more"], page["more_exact"], page["after"]) == (1, True, made[1])
    rest = biller.get(f"/v1/cases?{query}&after={made[1]}").json()
    assert (rest["cases"][0]["reference"], rest["more"], rest["after"]) == (made[0], 0, None)
    backwards = biller.get("/v1/cases?since=2026-12-01&until=2026-11-01")
    assert (backwards.status, backwards.error["code"]) == (400, "invalid")
    assert "is after until" in backwards.error["error"]
    mistyped = biller.get("/v1/cases?reference=123")
    assert (mistyped.status, mistyped.error["code"]) == (400, "refused")
    # Only what the agent may see: a customer-care agent finds none of billing's.
    carer = api_site.client("carer").get(f"/v1/cases?{urlencode({'words': word})}").json()
    assert carer["cases"] == [] and carer["more"] == 0


def test_a_date_alone_as_until_includes_that_day(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing")
    today = utcnow().astimezone(api_site.settings.business_hours.zone).date().isoformat()
    listed = api_site.client("biller").get(f"/v1/cases?since={today}&until={today}&limit=500")
    assert reference in {row["reference"] for row in listed.json()["cases"]}


def test_a_case_is_resolved_followed_up_and_closed(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing", status=CaseStatus.IN_PROGRESS)
    biller = api_site.client("biller")
    resolved = biller.post(f"/v1/cases/{reference}/resolve", {"summary": "refunded"})
    assert resolved.status == 200 and resolved.json()["status"] == "resolved"
    logged = biller.post(
        f"/v1/cases/{reference}/followups",
        {"method": "phone", "result": "satisfied", "effort_score": 5, "notes": "شكراً"},
    )
    assert logged.status == 201
    assert set(logged.json()) == {
        *("id", "at", "method", "result", "effort_score", "notes"),
        *("method_label_ar", "result_label_ar"),
    }
    assert logged.json()["result"] == "satisfied"
    closed = biller.post(f"/v1/cases/{reference}/close")  # no body: every key is optional
    assert closed.status == 200 and closed.json()["status"] == "closed"
    shown = biller.get(f"/v1/cases/{reference}").json()
    assert [f["result"] for f in shown["followups"]] == ["satisfied"]
    again = biller.post(f"/v1/cases/{reference}/close", {})
    assert (again.status, again.error["code"]) == (409, "conflict")


def test_a_wrong_follow_up_result_and_a_rule_refusal_are_400(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing", status=CaseStatus.RESOLVED)
    biller = api_site.client("biller")
    word = biller.post(f"/v1/cases/{reference}/followups", {"method": "phone", "result": "meh"})
    assert (word.status, word.error["code"]) == (400, "refused")
    assert "satisfied, not-satisfied, partial, no-answer" in word.error["error"]
    method = biller.post(
        f"/v1/cases/{reference}/followups", {"method": "pigeon", "result": "satisfied"}
    )
    assert (method.status, method.error["code"]) == (400, "invalid")
    unsatisfied = api_site.case(department="billing", status=CaseStatus.RESOLVED)
    close = biller.post(f"/v1/cases/{unsatisfied}/close", {})
    assert (close.status, close.error["code"]) == (400, "refused")


def test_escalation(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing")
    answer = api_site.client("biller").post(
        f"/v1/cases/{reference}/escalate", {"reason": "twice promised"}
    )
    assert answer.status == 200
    assert (answer.json()["status"], answer.json()["escalation_level"]) == ("escalated", 1)


# --- drafts -------------------------------------------------------------------------------------


def test_a_draft_is_opened_and_confirmed_as_it_stands(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "sales")
    reference = api_site.case(department="sales", status=CaseStatus.DRAFT)
    me = api_site.client(username)
    queue = me.get("/v1/drafts")
    assert queue.status == 200
    assert [row["reference"] for row in queue.json()] == [reference]
    opened = me.get(f"/v1/drafts/{reference}")
    assert opened.status == 200
    draft = opened.json()
    assert set(draft) == {"case", "recording", "marked_words", "numbers"}
    assert draft["numbers"] == [] and draft["case"]["keypad_number"] is None
    assert draft["recording"] is None
    assert draft["marked_words"][0] == ["الفاتورة", False]
    assert draft["case"]["leased_to"] == username and draft["case"]["leased_until"]
    # Taken: another agent of the department cannot confirm it meanwhile, nor see it waiting.
    other = api_site.add_agent(["agent"], "sales")
    taken = api_site.client(other).post(f"/v1/drafts/{reference}/confirm", {"category": "billing"})
    assert (taken.status, taken.error["code"]) == (409, "taken")
    assert f"is being reviewed by {username} until" in taken.error["error"]
    assert api_site.client(other).get("/v1/drafts").json() == []
    listed = api_site.client(other).get("/v1/drafts?taken=true").json()
    assert [(row["reference"], row["leased_to"]) for row in listed] == [(reference, username)]
    confirmed = me.post(f"/v1/drafts/{reference}/confirm", {"category": "billing"})
    assert confirmed.status == 200
    case = confirmed.json()
    assert case["status"] == "open"
    assert case["confirmed_text"] == "الفاتورة غير صحيحة هذا الشهر"


def test_a_draft_lease_is_renewed_with_the_version_and_released_by_its_holder_or_a_supervisor(
    api_site: ApiSite,
) -> None:
    username = api_site.add_agent(["agent"], "sales")
    reference = api_site.case(department="sales", status=CaseStatus.DRAFT)
    me = api_site.client(username)
    version = me.get(f"/v1/drafts/{reference}").json()["case"]["version"]
    renewed = me.post(f"/v1/drafts/{reference}/renew", {"version": version})
    assert renewed.status == 200
    assert (renewed.json()["leased_to"], renewed.json()["version"]) == (username, version + 1)
    stale = me.post(f"/v1/drafts/{reference}/renew", {"version": version})
    assert (stale.status, stale.error["code"]) == (409, "conflict")
    assert "changed meanwhile: kept under review by" in stale.error["error"]
    other = api_site.add_agent(["agent"], "sales")
    refused = api_site.client(other).post(f"/v1/drafts/{reference}/release")
    assert (refused.status, refused.error["code"]) == (409, "taken")
    released = api_site.client("supervisor").post(f"/v1/drafts/{reference}/release")
    assert released.status == 200
    assert (released.json()["released_from"], released.json()["leased_to"]) == (username, None)
    again = api_site.client("supervisor").post(f"/v1/drafts/{reference}/release", {})
    assert (again.status, again.error["code"]) == (400, "refused")
    mine = api_site.client(other).get(f"/v1/drafts/{reference}")
    assert mine.json()["case"]["leased_to"] == other
    own = api_site.client(other).post(f"/v1/drafts/{reference}/release", {})
    assert (own.status, own.json()["released_from"]) == (200, other)


def test_a_draft_confirmed_with_edited_text_or_rejected(api_site: ApiSite) -> None:
    reference = api_site.case(department="billing", status=CaseStatus.DRAFT)
    biller = api_site.client("biller")
    confirmed = biller.post(
        f"/v1/drafts/{reference}/confirm",
        {"text": "نص معدّل", "category": "network", "department": "technical", "priority": "high"},
    )
    assert confirmed.status == 200
    assert (confirmed.json()["confirmed_text"], confirmed.json()["priority"]) == (
        "نص معدّل",
        "high",
    )
    assert confirmed.json()["department"] == "technical"
    rejected_one = api_site.case(department="billing", status=CaseStatus.DRAFT)
    rejected = biller.post(f"/v1/drafts/{rejected_one}/reject", {"reason": "wrong number"})
    assert rejected.status == 200 and rejected.json()["status"] == "rejected"
    unknown_category = api_site.case(department="billing", status=CaseStatus.DRAFT)
    refused = biller.post(f"/v1/drafts/{unknown_category}/confirm", {"category": "weather"})
    assert (refused.status, refused.error["code"]) == (400, "refused")


# --- callbacks ----------------------------------------------------------------------------------


def assigned_callback(api_site: ApiSite, username: str, reference: str | None) -> int:
    agent = api_site.agent(username)
    case_id = api_site.stored_case(reference).id if reference is not None else None

    def work(session: Session) -> int:
        callback = Callback(
            case_id=case_id,
            phone_number="0920000002",
            reason=CallbackReason.FOLLOW_UP.value,
            department=agent.department,
            due_from=utcnow() - timedelta(minutes=5),
            overdue_at=utcnow() - timedelta(minutes=1),
            # The customer takes calls at any hour: these tests run on the wall clock.
            window_start=time.min,
            window_end=time.max,
            status=CallbackStatus.ASSIGNED.value,
            assigned_agent_id=agent.id,
        )
        session.add(callback)
        session.flush()
        assert callback.id is not None
        return callback.id

    return api_site.db.run(work)


def test_callbacks_list_next_and_reminders(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing", extension="201")
    reference = api_site.case(department="billing", status=CaseStatus.RESOLVED)
    callback_id = assigned_callback(api_site, username, reference)
    me = api_site.client(username)
    listed = me.get("/v1/callbacks?mine=true")
    assert listed.status == 200
    (row,) = listed.json()["callbacks"]
    assert set(row) == CALLBACK_KEYS
    assert (row["id"], row["case"], row["status"]) == (callback_id, reference, "assigned")
    # Who holds it, by user name (issue 18: the list showed neither the case nor the agent).
    assert (row["agent"], row["status_label_ar"], row["attempts"]) == (username, "مسندة", 0)
    assert me.get("/v1/callbacks").json()["callbacks"] == [row]  # an agent sees their own anyway
    nxt = me.get("/v1/callbacks/next")
    assert nxt.status == 200 and nxt.json()["callback"] == row and nxt.json()["reasons"] == []
    assert me.get("/v1/callbacks/reminders").json() == {"due": 1, "overdue": 1}


def test_callbacks_next_says_why_nothing_is_offered(api_site: ApiSite) -> None:
    """Issue 18: "no callbacks for you now" while callbacks waited because no scheduler ran."""
    nobody = api_site.add_agent(["agent"], "billing")
    empty = api_site.client(nobody).get("/v1/callbacks/next")
    assert empty.status == 200
    offer = empty.json()
    assert offer["callback"] is None
    assert offer["reasons"][0] == "no_scheduler"  # (and off shift, at night)
    assert offer["scheduler_seen_at"] is None
    assert isinstance(offer["waiting"], int)
    assert set(offer["shift"]) == {"days", "start", "end"}
    supervisor = api_site.client("supervisor").get("/v1/callbacks/next").json()
    assert supervisor["reasons"][0] == "not_an_agent"


def test_dialling_without_an_extension_is_refused_before_the_pbx(api_site: ApiSite) -> None:
    """Issue 18: the dial spent 20 s retrying the AMI before it looked at the extension."""
    username = api_site.add_agent(["agent"], "billing")
    callback_id = assigned_callback(api_site, username, None)
    ami = api_site.settings.ami
    original = (ami.port, ami.connect_timeout)
    with socket.create_server(("127.0.0.1", 0)) as pbx:  # listens, never answers
        ami.port, ami.connect_timeout = pbx.getsockname()[1], 5.0
        started = monotonic()
        try:
            answer = api_site.client(username).post(f"/v1/callbacks/{callback_id}/dial")
        finally:
            ami.port, ami.connect_timeout = original
        assert monotonic() - started < 3
        pbx.setblocking(False)
        with pytest.raises(BlockingIOError):
            pbx.accept()  # nobody connected
    assert (answer.status, answer.error["code"]) == (400, "refused")
    assert answer.error["error"].startswith(f"{username} has no phone extension to ring")


def test_a_callback_is_dialled_through_the_pbx(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing", extension="201")
    callback_id = assigned_callback(api_site, username, None)
    me = api_site.client(username)
    ami = api_site.settings.ami
    original = ami.port
    with PbxSimulator(seed=4, recordings_dir=api_site.settings.recordings.root) as sim:
        ami.port = sim.port
        try:
            dialled = me.post(f"/v1/callbacks/{callback_id}/dial")
        finally:
            ami.port = original
        (originate,) = sim.originated
    assert dialled.status == 200, dialled.body
    outcome = dialled.json()
    assert (outcome["result"], outcome["detail"]) == ("answered", "customer leg: ANSWER")
    assert outcome["callback"]["status"] == "done"
    assert outcome["max_attempts"] == api_site.settings.callbacks.max_attempts
    assert originate["Channel"] == "Local/201@hotline-agents"


def test_dialling_without_a_reachable_pbx_is_503(api_site: ApiSite) -> None:
    username = api_site.add_agent(["agent"], "billing", extension="202")
    callback_id = assigned_callback(api_site, username, None)
    ami = api_site.settings.ami
    original = (ami.port, ami.connect_timeout)
    ami.port, ami.connect_timeout = 1, 0.2  # nothing listens on port 1
    try:
        answer = api_site.client(username).post(f"/v1/callbacks/{callback_id}/dial")
    finally:
        ami.port, ami.connect_timeout = original
    assert (answer.status, answer.error["code"]) == (503, "pbx_unavailable")


# --- figures ------------------------------------------------------------------------------------


def test_report_calls_and_status(api_site: ApiSite) -> None:
    recorded_call(api_site.db, api_site.settings, unique("rep"))
    supervisor = api_site.client("supervisor")
    report = supervisor.get("/v1/report?since=2020-01-01&until=2099-01-01T00:00")
    assert report.status == 200
    figures = report.json()
    assert figures["cases_total"] >= 1
    assert figures["since"] == "2020-01-01T00:00:00+02:00"  # read in the site's zone (Tripoli)
    assert figures["cases_by_status_label_ar"]["open"] == "مفتوحة"
    bad = supervisor.get("/v1/report?since=yesterday")
    assert (bad.status, bad.error["code"]) == (400, "invalid")
    refused = api_site.client("carer").get("/v1/report")
    assert (refused.status, refused.error["code"]) == (403, "denied")

    calls = supervisor.get("/v1/calls?limit=5")
    assert calls.status == 200
    first = calls.json()["calls"][0]
    assert {"linkedid", "status", "case", "recording_missing", "ivr_choices"} <= set(first)
    assert api_site.client("carer").get("/v1/calls").status == 403

    status = api_site.client("carer").get("/v1/status")
    assert status.status == 200
    assert {"components", "live_calls", "queue_depth", "callbacks_due"} <= set(status.json())


# --- QA -----------------------------------------------------------------------------------------


def test_qa_criteria_sample_score_report_and_verify(api_site: ApiSite) -> None:
    recording = recorded_call(api_site.db, api_site.settings, unique("qa"))
    qa = api_site.client("qa")
    criteria = qa.get("/v1/qa/criteria")
    assert criteria.status == 200
    codes = [c["code"] for c in criteria.json()]
    assert criteria.json()[0]["choices"] == "0, 1 or 2"
    sample = qa.post("/v1/qa/samples", {"period_hours": 24, "per_agent": 50, "seed": 7})
    assert sample.status == 200
    assert sample.json()["seed"] == 7 and sample.json()["reviewer"] == "qa"
    assert recording.id in {item["recording"] for item in sample.json()["recordings"]}
    assert set(sample.json()["excluded"]) == {
        "out_of_period",
        "ivr_only",
        "deleted",
        "unverified",
        "reviewed",
        "drawn_before",
    }
    assert sample.json()["repeated"] is False and sample.json()["include_drawn"] is False
    again = qa.post("/v1/qa/samples", {"period_hours": 24, "per_agent": 50, "seed": 7})
    assert again.json()["recordings"] == sample.json()["recordings"]
    assert again.json()["repeated"] is True
    assert (again.json()["since"], again.json()["until"]) == (
        sample.json()["since"],
        sample.json()["until"],
    )

    context = qa.get(f"/v1/qa/recordings/{recording.id}")
    assert context.status == 200, context.body
    assert (context.json()["kind"], context.json()["latest_version"]) == ("call", 0)
    assert context.json()["case"] and context.json()["versions"] == []

    answers = dict.fromkeys(codes, "2") | {"confidentiality": "نعم"}
    scored = qa.post(
        "/v1/qa/scores", {"recording": recording.id, "scores": answers, "comment": "جيد"}
    )
    assert scored.status == 201
    assert scored.json() == {"recording": recording.id, "version": 1, "total": 100.0}
    rescored = qa.post(
        "/v1/qa/scores",
        {"recording": recording.id, "scores": answers | {"speed": "0"}, "version": 1},
    )
    assert (rescored.status, rescored.json()["version"]) == (201, 2)
    stale = qa.post("/v1/qa/scores", {"recording": recording.id, "scores": answers, "version": 1})
    assert (stale.status, stale.error["code"]) == (409, "conflict")
    assert (
        f"the score of recording {recording.id} changed meanwhile: scored by qa"
        in (stale.error["error"])
    )
    history = qa.get(f"/v1/qa/recordings/{recording.id}").json()
    assert [(v["version"], v["reviewer"]) for v in history["versions"]] == [(1, "qa"), (2, "qa")]
    assert history["versions"][0]["comment"] == "جيد"
    assert history["versions"][0]["at"].endswith(offset_of(api_site))
    assert api_site.client("carer").get(f"/v1/qa/recordings/{recording.id}").status == 403
    bad = qa.post(
        "/v1/qa/scores",
        {"recording": recording.id, "scores": answers | {"speed": "7"}},
    )
    assert (bad.status, bad.error["code"]) == (400, "refused")
    assert bad.error["error"].startswith("speed:")
    unknown = qa.post("/v1/qa/scores", {"recording": recording.id, "scores": {"charm": "2"}})
    assert unknown.status == 400 and "charm" in unknown.error["error"]

    report = qa.get("/v1/qa/report?period_hours=24")
    assert report.status == 200 and report.json()["reviews"] >= 1
    assert report.json()["until"].endswith(offset_of(api_site))

    verified = qa.post("/v1/qa/verify", {"since": "2020-01-01"})
    assert verified.status == 200
    assert set(verified.json()) == {"checked", "intact", "changed", "missing", "unexpected"}
    assert verified.json()["checked"] >= 1
    assert api_site.client("carer").post("/v1/qa/verify").status == 403


# --- recordings retention, audit, agents ---------------------------------------------------------


def test_retention_dry_run(api_site: ApiSite) -> None:
    old = recorded_call(
        api_site.db,
        api_site.settings,
        unique("old"),
        status=CaseStatus.CLOSED,
        created=utcnow() - timedelta(days=800),
    )
    answer = api_site.client("admin").post("/v1/recordings/retention", {"dry_run": True})
    assert answer.status == 200
    due = {item["recording_id"]: item for item in answer.json()}
    assert old.id in due and due[old.id]["deleted"] is False
    assert set(due[old.id]) == {"recording_id", "case_reference", "due", "deleted", "path", "error"}
    refused = api_site.client("qa").post("/v1/recordings/retention", {"dry_run": True})
    assert refused.status == 403


def test_audit_log_list_and_verify(api_site: ApiSite) -> None:
    supervisor = api_site.client("supervisor")
    listed = supervisor.get("/v1/audit?object_type=case&limit=5")
    assert listed.status == 200
    rows = listed.json()["events"]
    assert 0 < len(rows) <= 5
    assert set(rows[0]) == {
        "id",
        "seq",
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "allowed",
        "detail",
    }
    assert {row["object_type"] for row in rows} == {"case"}
    since = supervisor.get("/v1/audit?since=2099-01-01")
    assert since.status == 200 and since.json()["events"] == []
    chain = supervisor.get("/v1/audit/verify")
    assert chain.status == 200
    assert chain.json()["intact"] is True and chain.json()["first_break"] is None
    assert chain.json()["problems"] == [] and chain.json()["head_seq"] == chain.json()["entries"]
    assert api_site.client("carer").get("/v1/audit").status == 403


def test_an_agent_is_edited_field_by_field_and_null_clears_one(api_site: ApiSite) -> None:
    username = unique("edit")
    admin = api_site.client("admin")
    body = {"username": username, "display_name": "Omar", "roles": ["agent"], "capacity": 2}
    assert admin.post("/v1/agents", body).status == 201
    edited = admin.patch(f"/v1/agents/{username}", {"capacity": None, "extension": "401"})
    assert edited.status == 200, edited.json()
    assert edited.json()["changed"] == {"capacity": [2, None], "extension": [None, "401"]}
    agent = edited.json()["agent"]
    assert (agent["capacity"], agent["effective_capacity"], agent["extension"]) == (None, 10, "401")
    for refused, code in (
        ({"roles": None}, "invalid"),
        ({"capacity": "many"}, "invalid"),
        ({"password_hash": "x"}, "invalid"),
        ({"department": "nowhere"}, "refused"),
    ):
        answer = admin.patch(f"/v1/agents/{username}", refused)
        assert (answer.status, answer.error["code"]) == (400, code), refused
    assert api_site.client("carer").patch(f"/v1/agents/{username}", {"capacity": 3}).status == 403
    assert admin.patch("/v1/agents/nobody", {"capacity": 3}).status == 404


def test_agents_list_and_add_with_every_field(api_site: ApiSite) -> None:
    username = unique("full")
    added = api_site.client("admin").post(
        "/v1/agents",
        {
            "username": username,
            "display_name": "سالم",
            "roles": ["agent"],
            "department": "technical",
            "languages": ["ar", "en"],
            "skills": ["network"],
            "extension": "305",
            "shift_days": ["sun", "mon"],
            "shift_start": "08:00",
            "shift_end": "16:00",
            "capacity": 4,
        },
    )
    assert added.status == 201
    assert set(added.json()) == {"agent", "one_time_password"}
    listed = {a["username"]: a for a in api_site.client("admin").get("/v1/agents").json()}
    assert listed[username] == {
        "username": username,
        "display_name": "سالم",
        "roles": ["agent"],
        "department": "technical",
        "languages": ["ar", "en"],
        "skills": ["network"],
        "extension": "305",
        "shift_days": ["mon", "sun"],
        "shift_start": "08:00",
        "shift_end": "16:00",
        "capacity": 4,
        "effective_capacity": 4,
        "active": True,
        "locked": False,
        "roles_label_ar": "موظف",
        "department_label_ar": "الدعم الفني",
    }
    again = api_site.client("admin").post(
        "/v1/agents", {"username": username, "display_name": "x", "roles": ["agent"]}
    )
    assert (again.status, again.error["code"]) == (400, "refused")
    shift = api_site.client("admin").post(
        "/v1/agents",
        {"username": unique("s"), "display_name": "x", "roles": ["agent"], "shift_start": "8h"},
    )
    assert (shift.status, shift.error["code"]) == (400, "invalid")
    assert "shift_start" in shift.error["error"]


# --- requests the API cannot read ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"summary": 5}', "summary"),
        (b"{}", "summary: Field required"),
        (b'{"summary": "x", "extra": 1}', "extra"),
        (b"", "Field required"),
    ],
    ids=["garbled", "wrong-type", "missing", "unknown-key", "empty"],
)
def test_a_bad_body_is_400_in_one_line(api_site: ApiSite, raw: bytes, where: str) -> None:
    reference = api_site.case(department="billing", status=CaseStatus.IN_PROGRESS)
    answer = api_site.client("biller").post(f"/v1/cases/{reference}/resolve", raw=raw)
    assert answer.status == 400
    assert answer.error["code"] == "invalid"
    assert where in answer.error["error"]
    assert api_site.stored_case(reference).status == "in_progress"  # nothing happened


def test_unknown_routes_and_methods_and_no_docs(api_site: ApiSite) -> None:
    client = api_site.client("admin")
    for path in ("/v1/nothing", "/docs", "/redoc", "/openapi.json"):
        answer = client.get(path)
        assert (answer.status, answer.error["code"]) == (404, "not_found"), path
    wrong = client.request("PUT", "/v1/cases")
    assert (wrong.status, wrong.error["code"]) == (405, "method_not_allowed")


def test_a_draft_names_its_recorded_message(api_site: ApiSite) -> None:
    recording = recorded_call(
        api_site.db,
        api_site.settings,
        unique("msg"),
        status=CaseStatus.DRAFT,
        kind=RecordingKind.MESSAGE,
    )
    reference = reference_of(api_site.db, recording)
    opened = api_site.client("supervisor").get(f"/v1/drafts/{reference}")
    assert opened.status == 200
    assert opened.json()["recording"] == {
        "id": recording.id,
        "duration_seconds": recording.duration_seconds,
    }


def test_a_body_too_large_or_of_unknown_length_is_refused_unread(api_site: ApiSite) -> None:
    big = b'{"username": "' + b"x" * (1 << 20) + b'", "password": "p"}'
    too_large = api_site.anonymous.post("/v1/sessions", raw=big)
    assert (too_large.status, too_large.error["code"]) == (413, "too_large")
    connection = UnixHTTPConnection(api_site.settings.server.socket)
    try:
        connection.request(
            "POST",
            "/v1/sessions",
            body=iter([b'{"username": "admin", ', b'"password": "x"}']),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert (status, body["code"]) == (411, "length_required")


def test_a_draft_shows_the_keyed_number_and_the_numbers_said(api_site: ApiSite) -> None:
    recording = recorded_call(
        api_site.db,
        api_site.settings,
        unique("msg"),
        status=CaseStatus.DRAFT,
        kind=RecordingKind.MESSAGE,
    )
    reference = reference_of(api_site.db, recording)
    assert recording.id is not None
    recording_id = recording.id
    said = {"digits": "0912", "spoken": "صفر تسعة واحد اتنين"}

    def keyed_and_transcribed(session: Session) -> None:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        case.keypad_number = "0912345678"
        text = "رقمي 0912 والفاتورة 50 دينار"
        case.draft_text = text
        segments = [
            {"text": "رقمي 0912", "numbers": [said]},
            {"text": "والفاتورة 50 دينار", "numbers": [{"digits": "50", "spoken": "خمسين"}]},
        ]
        session.add(case)
        session.add(
            Transcript(recording_id=recording_id, model_name="m", text=text, segments=segments)
        )

    api_site.db.run(keyed_and_transcribed)
    supervisor = api_site.client("supervisor")
    opened = supervisor.get(f"/v1/drafts/{reference}").json()
    assert opened["case"]["keypad_number"] == "0912345678"
    assert opened["numbers"] == [said, {"digits": "50", "spoken": "خمسين"}]
    shown = supervisor.get(f"/v1/cases/{reference}").json()
    assert shown["keypad_number"] == "0912345678"
    found = supervisor.get("/v1/cases?account=0912-345-678").json()["cases"]
    assert [row["reference"] for row in found] == [reference]
    wrong = supervisor.get("/v1/cases?account=09x")
    assert (wrong.status, wrong.error["code"]) == (400, "refused")
    assert "not an account number" in wrong.error["error"]
