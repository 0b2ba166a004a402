"""One winner per change, through the server: of two people confirming one draft at once, one
is answered with the case and the other with 409 and one line naming the change that won."""

from __future__ import annotations

import re
import threading

from sqlmodel import col, select

from casebook.models import AuditEvent, CaseStatus
from tests.api.conftest import ApiSite
from tests.api.unix_http import Answer

BARRIER_SECONDS = 30.0


def case_open_entries(api_site: ApiSite, reference: str) -> list[AuditEvent]:
    with api_site.db.session() as session:
        query = (
            select(AuditEvent)
            .where(AuditEvent.object_id == reference, AuditEvent.action == "case.open")
            .order_by(col(AuditEvent.id))
        )
        return list(session.exec(query))


def refusal_line(api_site: ApiSite, reference: str, change: str, entry: AuditEvent) -> str:
    """The loser's line, with the winner's moment in the site's time."""
    local = entry.at.astimezone(api_site.settings.business_hours.zone)
    return (
        "تغيّر السجل في أثناء ذلك: أعد التحميل وحاول مجددًا. "
        rf"case {reference} changed meanwhile: {change} by {entry.actor} at "
        rf"(\d{{4}}-\d\d-\d\d )?{local:%H:%M} \(now open\); reload and try again"
    )


def confirm_at_once(
    api_site: ApiSite, reference: str, people: list[tuple[str, str]]
) -> dict[str, Answer]:
    """Each person (user name, category) is shown the case, and once all have been, confirms
    it with the version shown; their answers."""
    barrier = threading.Barrier(len(people), timeout=BARRIER_SECONDS)
    answers: dict[str, Answer] = {}

    def confirm(username: str, category: str) -> None:
        client = api_site.client(username)
        shown = client.get(f"/v1/cases/{reference}")
        assert shown.status == 200, shown.body
        body = {"category": category, "text": f"نص {username}", "version": shown.json()["version"]}
        barrier.wait()
        answers[username] = client.post(f"/v1/drafts/{reference}/confirm", body)

    threads = [threading.Thread(target=confirm, args=person) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * BARRIER_SECONDS)
    return answers


def test_two_confirmations_of_one_draft_one_is_answered_409_with_one_line(
    api_site: ApiSite,
) -> None:
    second = api_site.add_agent(["supervisor"], "customer-care")
    people = [("supervisor", "billing"), (second, "network")]
    for _ in range(5):
        reference = api_site.case(status=CaseStatus.DRAFT)
        answers = confirm_at_once(api_site, reference, people)
        statuses = sorted(answer.status for answer in answers.values())
        assert statuses == [200, 409], {name: a.body for name, a in answers.items()}
        winner = next(name for name, answer in answers.items() if answer.status == 200)
        loser = answers[next(name for name, _ in people if name != winner)]
        [entry] = case_open_entries(api_site, reference)
        assert entry.actor == winner
        assert loser.error["code"] == "conflict"
        assert "\n" not in loser.error["error"]
        assert re.fullmatch(
            refusal_line(api_site, reference, "confirmed", entry), loser.error["error"]
        )
        stored = api_site.stored_case(reference)
        assert (stored.status, stored.confirmed_text) == ("open", f"نص {winner}")
        assert answers[winner].json()["version"] == stored.version


def test_a_change_decided_on_an_older_version_is_refused_409(api_site: ApiSite) -> None:
    reference = api_site.case(status=CaseStatus.IN_PROGRESS)
    supervisor = api_site.client("supervisor")
    shown = supervisor.get(f"/v1/cases/{reference}").json()
    escalated = api_site.client("carer").post(
        f"/v1/cases/{reference}/escalate", {"reason": "twice promised", "version": shown["version"]}
    )
    assert escalated.status == 200, escalated.body
    resolved = supervisor.post(
        f"/v1/cases/{reference}/resolve", {"summary": "fixed", "version": shown["version"]}
    )
    assert (resolved.status, resolved.error["code"]) == (409, "conflict")
    assert f"case {reference} changed meanwhile: escalated by carer at " in resolved.error["error"]
    assert resolved.error["error"].endswith("(now escalated); reload and try again")
    assert api_site.stored_case(reference).status == "escalated"
    # Without a version the change is decided on the case as it is now.
    again = supervisor.post(f"/v1/cases/{reference}/resolve", {"summary": "fixed"})
    assert again.status == 200, again.body
