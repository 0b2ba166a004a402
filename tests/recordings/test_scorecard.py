"""The QA scorecard: scores stored with their weighted total; the report's figures."""

from __future__ import annotations

import pytest

from casebook.db import Database
from casebook.errors import AccessDenied, CasebookError
from casebook.models import QAReview
from hotline.app.config import Settings
from recordings.scorecard import parse_answers, parse_value, qa_report, score_recording
from tests.conftest import Staff
from tests.recordings.helpers import audit_events, recorded_call

CODES = [
    "listening_empathy",
    "seriousness",
    "transparency",
    "neutrality",
    "speed",
    "keeping_in_touch",
    "practical_solutions",
    "confidentiality",
    "professionalism",
    "rebuilding_trust",
]


def all_scored(value: float, **overrides: float) -> dict[str, float]:
    scores = dict.fromkeys(CODES, value)
    scores["confidentiality"] = min(value, 1.0)
    return scores | overrides


def score(
    db: Database, settings: Settings, staff: Staff, reviewer: str, rec: int, **s: float
) -> QAReview:
    return db.run(
        lambda session: score_recording(
            session, settings.qa, staff.actor(reviewer), rec, s, comment="ok"
        )
    )


def test_the_default_scorecard_has_the_ten_criteria(settings: Settings) -> None:
    assert [c.code for c in settings.qa.criteria] == CODES
    assert settings.qa.criteria[0].label_ar == "الاستماع الجيد والتعاطف"


def test_answers_are_read_on_each_scale(settings: Settings) -> None:
    empathy, confidentiality = settings.qa.criteria[0], settings.qa.criteria[7]
    assert parse_value(empathy, "2") == 2.0 and parse_value(empathy, "١") == 1.0
    assert parse_value(confidentiality, "نعم") == 1.0 and parse_value(confidentiality, "No") == 0.0
    with pytest.raises(CasebookError, match="answer 0, 1 or 2"):
        parse_value(empathy, "3")


def test_a_score_is_stored_with_its_weighted_total_and_scoring_again_replaces_it(
    db: Database, settings: Settings, staff: Staff
) -> None:
    recording = recorded_call(db, settings, "c1")
    review = score(db, settings, staff, "qa", recording.id or 0, **all_scored(2.0))
    assert review.total == pytest.approx(100.0)
    # Empathy (weight 1.5 of 11) at 0: 100 * (11 - 1.5) / 11.
    again = score(
        db, settings, staff, "qa", recording.id or 0, **all_scored(2.0, listening_empathy=0.0)
    )
    assert again.id == review.id and again.total == pytest.approx(100 * 9.5 / 11)
    assert [e.action for e in audit_events(db, "qa.rescore")] == ["qa.rescore"]


def test_partial_or_wrong_scorecards_and_agents_are_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    rec = recorded_call(db, settings, "c1").id or 0
    with pytest.raises(CasebookError, match=r"missing: .*rebuilding_trust"):
        score(db, settings, staff, "qa", rec, listening_empathy=2.0)
    with pytest.raises(CasebookError, match="confidentiality: 2 is not yes/no"):
        score(db, settings, staff, "qa", rec, **all_scored(2.0, confidentiality=2.0))
    with pytest.raises(AccessDenied):
        score(db, settings, staff, "carer", rec, **all_scored(2.0))


def test_the_report_averages_per_agent_and_per_criterion(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, biller = staff.actor("carer").agent_id, staff.actor("biller").agent_id
    c1 = recorded_call(db, settings, "c1", agent_id=carer).id or 0
    c2 = recorded_call(db, settings, "c2", agent_id=carer).id or 0
    b1 = recorded_call(db, settings, "b1", agent_id=biller).id or 0
    score(db, settings, staff, "qa", c1, **all_scored(2.0))
    score(db, settings, staff, "qa", c2, **all_scored(1.0, confidentiality=0.0))
    score(db, settings, staff, "supervisor", b1, **all_scored(0.0, speed=2.0))

    report = db.run(lambda s: qa_report(s, settings.qa, staff.actor("supervisor")))

    assert report.reviews == 3
    agents = {row.agent: row for row in report.per_agent}
    assert agents["carer"].reviews == 2
    # c2: the criteria weighing 10 of 11 at half, confidentiality (weight 1) at nothing.
    c2_total = 100 * 0.5 * 10 / 11
    assert agents["carer"].total == pytest.approx((100 + c2_total) / 2)
    assert agents["carer"].criteria["listening_empathy"] == pytest.approx(1.5)
    assert agents["carer"].criteria["confidentiality"] == pytest.approx(0.5)
    assert agents["biller"].total == pytest.approx(100 * 1 / 11)
    criteria = {row.code: row for row in report.per_criterion}
    assert criteria["speed"].mean == pytest.approx((2 + 1 + 2) / 3)
    assert criteria["speed"].percent == pytest.approx(100 * 5 / 6)
    assert criteria["confidentiality"].mean == pytest.approx(1 / 3)
    assert criteria["listening_empathy"].weight == 1.5 and criteria["speed"].reviews == 3
    with pytest.raises(AccessDenied):
        db.run(lambda s: qa_report(s, settings.qa, staff.actor("carer")))


def test_a_scorecard_as_typed_is_read_or_refused_naming_the_criterion(settings: Settings) -> None:
    typed = dict.fromkeys(CODES, "٢") | {"confidentiality": "نعم"}
    assert parse_answers(settings.qa, typed) == all_scored(2.0)
    with pytest.raises(CasebookError, match=r"^speed: answer 0, 1 or 2, got '5'"):
        parse_answers(settings.qa, typed | {"speed": "5"})
    with pytest.raises(CasebookError, match=r"^charm: unknown criterion"):
        parse_answers(settings.qa, {"charm": "2"})
