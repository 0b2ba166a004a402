"""The QA scorecard: scores stored with their weighted total, a rescore a new version; the
report's figures (the latest version of each recording, IVR-only recordings on nobody)."""

from __future__ import annotations

from datetime import UTC

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import col, select

from casebook.clock import utcnow
from casebook.db import Database, _alembic_config
from casebook.errors import AccessDenied, CasebookError, Conflict
from casebook.models import QAReview, RecordingKind
from hotline.app.config import Settings
from recordings.sampling import UNASSIGNED
from recordings.scorecard import (
    parse_answers,
    parse_value,
    qa_report,
    score_context,
    score_recording,
)
from tests.conftest import Staff, owner_connection
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
    db: Database,
    settings: Settings,
    staff: Staff,
    reviewer: str,
    rec: int,
    scores: dict[str, float],
    seen_version: int | None = None,
) -> QAReview:
    return db.run(
        lambda session: score_recording(
            session,
            settings.qa,
            staff.actor(reviewer),
            rec,
            scores,
            comment="ok",
            seen_version=seen_version,
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


def test_a_score_is_stored_with_its_weighted_total_and_scoring_again_adds_a_version(
    db: Database, settings: Settings, staff: Staff
) -> None:
    recording = recorded_call(db, settings, "c1")
    review = score(db, settings, staff, "qa", recording.id or 0, all_scored(2.0))
    assert review.total == pytest.approx(100.0) and review.version == 1
    # Empathy (weight 1.5 of 11) at 0: 100 * (11 - 1.5) / 11.
    again = score(
        db, settings, staff, "qa", recording.id or 0, all_scored(2.0, listening_empathy=0.0)
    )
    assert again.id != review.id and again.version == 2
    assert again.total == pytest.approx(100 * 9.5 / 11)
    # The first version is kept as it was.
    with db.session() as session:
        kept = session.exec(select(QAReview).order_by(col(QAReview.version))).all()
    assert [(r.version, r.total) for r in kept] == [(1, pytest.approx(100.0)), (2, again.total)]
    assert [e.detail["version"] for e in audit_events(db, "qa.rescore")] == [2]
    context = db.run(lambda s: score_context(s, staff.actor("qa"), recording.id or 0))
    assert [(v.version, v.reviewer) for v in context.versions] == [(1, "qa"), (2, "qa")]
    assert context.latest_version == 2


def test_a_score_decided_on_an_older_version_is_refused_naming_who_scored(
    db: Database, settings: Settings, staff: Staff
) -> None:
    rec = recorded_call(db, settings, "c1").id or 0
    score(db, settings, staff, "qa", rec, all_scored(2.0), seen_version=0)
    with pytest.raises(Conflict) as refused:
        score(db, settings, staff, "supervisor", rec, all_scored(1.0), seen_version=0)
    line = refused.value.line(UTC)
    assert f"the score of recording {rec} changed meanwhile: scored by qa at " in line
    assert line.endswith("(now version 1); reload and try again")
    second = score(db, settings, staff, "supervisor", rec, all_scored(1.0), seen_version=1)
    assert (second.version, second.reviewer_id) == (2, staff.actor("supervisor").agent_id)


def test_an_ivr_only_recording_is_no_agents_call(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer").agent_id
    message = recorded_call(db, settings, "m1", agent_id=carer, kind=RecordingKind.MESSAGE)
    call = recorded_call(db, settings, "c1", agent_id=carer)
    score(db, settings, staff, "qa", message.id or 0, all_scored(0.0))
    score(db, settings, staff, "qa", call.id or 0, all_scored(2.0))
    context = db.run(lambda s: score_context(s, staff.actor("qa"), message.id or 0))
    assert (context.agent, context.ivr_only, context.kind) == (None, True, "message")
    assert context.case is not None  # the case it belongs to is still named
    report = db.run(lambda s: qa_report(s, settings.qa, staff.actor("supervisor")))
    agents = {row.agent: row for row in report.per_agent}
    assert agents["carer"].reviews == 1 and agents["carer"].total == pytest.approx(100.0)
    assert agents[UNASSIGNED].reviews == 1


def test_partial_or_wrong_scorecards_and_agents_are_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    rec = recorded_call(db, settings, "c1").id or 0
    with pytest.raises(CasebookError, match=r"missing: .*rebuilding_trust"):
        score(db, settings, staff, "qa", rec, {"listening_empathy": 2.0})
    with pytest.raises(CasebookError, match="confidentiality: 2 is not yes/no"):
        score(db, settings, staff, "qa", rec, all_scored(2.0, confidentiality=2.0))
    with pytest.raises(AccessDenied):
        score(db, settings, staff, "carer", rec, all_scored(2.0))


def test_the_report_averages_per_agent_and_per_criterion(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, biller = staff.actor("carer").agent_id, staff.actor("biller").agent_id
    c1 = recorded_call(db, settings, "c1", agent_id=carer).id or 0
    c2 = recorded_call(db, settings, "c2", agent_id=carer).id or 0
    b1 = recorded_call(db, settings, "b1", agent_id=biller).id or 0
    score(db, settings, staff, "qa", c1, all_scored(0.0))
    score(db, settings, staff, "qa", c2, all_scored(1.0, confidentiality=0.0))
    score(db, settings, staff, "supervisor", b1, all_scored(0.0, speed=2.0))

    # A rescore counts once, as its latest version: c1's first version (all at 0) is history.
    score(db, settings, staff, "supervisor", c1, all_scored(2.0))
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


def test_the_version_migration_numbers_each_recordings_reviews_in_the_order_written(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """Down to 0006 (one review per recording and reviewer), two reviewers' reviews of one
    recording stored as then, and up again: versions 1 and 2, in the order they were written."""
    rec = recorded_call(db, settings, "c1").id or 0
    qa, supervisor = staff.actor("qa").agent_id, staff.actor("supervisor").agent_id
    with owner_connection(db) as connection:
        command.downgrade(_alembic_config(connection), "0006")
    with owner_connection(db) as connection:
        insert = text(
            "INSERT INTO qa_review (recording_id, reviewer_id, scores, total, created_at) "
            "VALUES (:recording, :reviewer, '{}', :total, :at)"
        )
        for reviewer, total in ((supervisor, 50.0), (qa, 80.0)):
            connection.execute(
                insert, {"recording": rec, "reviewer": reviewer, "total": total, "at": utcnow()}
            )
        command.upgrade(_alembic_config(connection), "head")
    db.engine.dispose()  # connections that cached the old table shapes
    with db.session() as session:
        reviews = session.exec(select(QAReview).order_by(col(QAReview.id))).all()
    assert [(r.reviewer_id, r.version, r.total) for r in reviews] == [
        (supervisor, 1, 50.0),
        (qa, 2, 80.0),
    ]
    third = score(db, settings, staff, "qa", rec, all_scored(2.0), seen_version=2)
    assert third.version == 3
