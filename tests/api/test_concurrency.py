"""One winner per change, through the server: of two people confirming one draft at once, one
is answered with the case and the other with 409 and one line naming the change that won. The
same for two reviewers' first scores of one recording; two draws of one sample give it once."""

from __future__ import annotations

import re
import threading
from typing import Any

from sqlmodel import col, select

from casebook.models import AuditEvent, CaseStatus, QAReview, QASample
from tests.api.conftest import ApiSite, unique
from tests.api.unix_http import Answer
from tests.recordings.helpers import recorded_call

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


def at_once(api_site: ApiSite, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Answer]:
    """Each (user name, path, body) posted at the same moment; the answers in that order."""
    barrier = threading.Barrier(len(requests), timeout=BARRIER_SECONDS)
    answers: list[Answer | None] = [None] * len(requests)

    def post(index: int, username: str, path: str, body: dict[str, Any]) -> None:
        client = api_site.client(username)
        barrier.wait()
        answers[index] = client.post(path, body)

    threads = [
        threading.Thread(target=post, args=(index, *request))
        for index, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * BARRIER_SECONDS)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def scorecard(api_site: ApiSite, value: str) -> dict[str, str]:
    return {c.code: value if c.scale == "0-2" else "yes" for c in api_site.settings.qa.criteria}


def test_two_first_scores_of_one_recording_one_is_answered_409_with_one_line(
    api_site: ApiSite,
) -> None:
    second = api_site.add_agent(["qa"])
    for _ in range(3):
        rec = recorded_call(api_site.db, api_site.settings, unique("race")).id
        people = [("qa", "2"), (second, "1")]
        answers = at_once(
            api_site,
            [
                (
                    name,
                    "/v1/qa/scores",
                    {"recording": rec, "scores": scorecard(api_site, value), "version": 0},
                )
                for name, value in people
            ],
        )
        assert sorted(a.status for a in answers) == [201, 409], [a.body for a in answers]
        winner = people[[a.status for a in answers].index(201)][0]
        loser = next(a for a in answers if a.status == 409)
        assert loser.error["code"] == "conflict" and "\n" not in loser.error["error"]
        assert (
            f"the score of recording {rec} changed meanwhile: scored by {winner} at "
            in (loser.error["error"])
        )
        assert loser.error["error"].endswith("(now version 1); reload and try again")
        with api_site.db.session() as session:
            stored = session.exec(select(QAReview).where(QAReview.recording_id == rec)).all()
        assert [r.version for r in stored] == [1]


def test_two_scores_without_a_version_are_both_kept_in_the_order_written(
    api_site: ApiSite,
) -> None:
    rec = recorded_call(api_site.db, api_site.settings, unique("both")).id
    answers = at_once(
        api_site,
        [
            ("qa", "/v1/qa/scores", {"recording": rec, "scores": scorecard(api_site, value)})
            for value in ("2", "1")
        ],
    )
    assert [a.status for a in answers] == [201, 201], [a.body for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [1, 2]


def test_two_draws_of_one_seed_at_once_give_one_sample_written_once(api_site: ApiSite) -> None:
    reviewer = api_site.add_agent(["qa"])
    for _ in range(3):
        recorded_call(api_site.db, api_site.settings, unique("drawn"))
    body = {"period_hours": 1, "per_agent": 2, "seed": 4242}
    answers = at_once(api_site, [(reviewer, "/v1/qa/samples", body)] * 2)
    assert [a.status for a in answers] == [200, 200], [a.body for a in answers]
    first, second = (a.json() for a in answers)
    assert first["recordings"] == second["recordings"] and first["recordings"]
    assert sorted([first["repeated"], second["repeated"]]) == [False, True]
    reviewer_id = api_site.agent(reviewer).id
    with api_site.db.session() as session:
        rows = session.exec(select(QASample).where(QASample.reviewer_id == reviewer_id)).all()
    assert len(rows) == len(first["recordings"])
