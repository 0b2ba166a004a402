from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest

from casebook import cases, followups
from casebook.db import Database
from casebook.errors import AccessDenied
from casebook.models import ContactMethod, FollowUpResult
from casebook.reports import build_report
from hotline.app.config import Settings
from tests.casebook.test_cases import NOW, open_case
from tests.conftest import Staff

R = FollowUpResult


def test_csat_strict_and_lenient_ces_and_sla(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    answers = [
        (R.SATISFIED, 5),
        (R.SATISFIED, 4),
        (R.PARTIALLY_SATISFIED, 2),
        (R.NOT_SATISFIED, 1),
        (R.NO_ANSWER, None),
    ]
    for n, (result, effort) in enumerate(answers):
        ref = open_case(db, settings, staff, f"u-{n}")
        db.run(
            partial(
                followups.log_followup,
                settings=settings,
                actor=carer,
                reference=ref,
                method=ContactMethod.PHONE,
                result=result,
                effort_score=effort,
                now=NOW,
            )
        )
    late = open_case(db, settings, staff, "late")
    assert late
    # One more case registered, never resolved, long past its promise.
    db.run(
        lambda s: cases.register_complaint(
            s, settings, carer, caller_number="0920000000", now=datetime(2026, 1, 1, tzinfo=UTC)
        )
    )
    report = db.run(
        lambda s: build_report(
            s, staff.actor("supervisor"), settings.followup, until=datetime(2026, 12, 1, tzinfo=UTC)
        )
    )
    assert report.followups_answered == 4  # "no answer" is not an answer
    assert report.csat_strict == 0.5
    assert report.csat_lenient == 0.75
    assert report.ces == 0.5  # 2 of 4 effort answers are 4 or 5 on the 1-5 scale
    assert report.ces_mean == 3.0
    assert report.cases_total == 7
    assert report.sla_met == 6  # resolved at registration time: well within the promise
    assert report.sla_missed == 0
    assert report.sla_overdue_open == 1
    assert report.cases_by_status["draft"] == 1


def test_reports_are_for_supervisors_qa_and_admins(
    db: Database, staff: Staff, settings: Settings
) -> None:
    with pytest.raises(AccessDenied):
        db.run(lambda s: build_report(s, staff.actor("carer"), settings.followup))
    empty = db.run(lambda s: build_report(s, staff.actor("qa"), settings.followup))
    assert empty.csat_strict is None and empty.ces is None
