"""A draft's words with Whisper's doubt marks, and when those marks apply (casebook.drafts)."""

from __future__ import annotations

from typing import Any

import pytest

from casebook import cases, drafts
from casebook.access import Actor
from casebook.db import Database
from casebook.drafts import Draft
from casebook.errors import Taken
from casebook.models import Case, Transcript
from hotline.app.config import Settings
from tests.conftest import Staff

WORDS = [
    {"text": " شارع", "doubtful": False},
    {"text": " مكسور", "doubtful": True},
    {"text": " ", "doubtful": True},
]


def draft(draft_text: str, segments: list[dict[str, Any]], text: str) -> Draft:
    transcript = Transcript(recording_id=1, model_name="m", text=text, segments=segments)
    return Draft(Case(draft_text=draft_text), None, transcript)


def test_whisper_words_keep_their_marks_while_the_draft_is_whisper_text() -> None:
    segments = [{"text": "شارع مكسور", "doubtful": False, "words": WORDS}]
    assert draft("شارع مكسور", segments, "شارع مكسور").marked_words() == [
        ("شارع", False),
        ("مكسور", True),
    ]


def test_without_word_timings_a_segment_marks_all_its_words() -> None:
    segments = [
        {"text": "الماء مقطوع", "doubtful": True},
        {"text": "منذ يومين", "doubtful": False},
    ]
    text = "الماء مقطوع منذ يومين"
    assert draft(text, segments, text).marked_words() == [
        ("الماء", True),
        ("مقطوع", True),
        ("منذ", False),
        ("يومين", False),
    ]


def test_an_edited_draft_carries_no_marks() -> None:
    segments = [{"text": "شارع مكسور", "doubtful": True, "words": WORDS}]
    edited = draft("شارع مكسور جدا", segments, "شارع مكسور")
    assert edited.marked_words() == [("شارع", False), ("مكسور", False), ("جدا", False)]
    untranscribed = Draft(Case(draft_text="نص"), None, None)
    assert untranscribed.marked_words() == [("نص", False)]


def test_the_numbers_said_stay_beside_the_draft_even_once_edited() -> None:
    phone = {"digits": "0912", "spoken": "صفر تسعة واحد اتنين"}
    amount = {"digits": "50", "spoken": "خمسين"}
    segments = [
        {"text": "رقمي 0912", "doubtful": False, "numbers": [phone]},
        {"text": "منذ يومين", "doubtful": False},  # stored before numbers were: no key
        {"text": "و50 دينار", "doubtful": False, "numbers": [amount]},
    ]
    said = [drafts.SpokenNumber(**phone), drafts.SpokenNumber(**amount)]
    text = "رقمي 0912 منذ يومين و50 دينار"
    assert draft(text, segments, text).spoken_numbers() == said
    assert draft("رقمي 0913", segments, text).spoken_numbers() == said
    assert Draft(Case(draft_text="نص"), None, None).spoken_numbers() == []


def test_the_reviewer_confirms_the_draft_as_it_stands_and_nobody_else_meanwhile(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, supervisor = staff.actor("carer"), staff.actor("supervisor")
    case = db.run(
        lambda s: cases.register_complaint(
            s, settings, Actor.system("test"), caller_number="0911111111", draft_text="الماء مقطوع"
        )
    )
    reference = case.reference or ""
    db.run(lambda s: drafts.open_draft(s, settings, carer, reference))
    with pytest.raises(Taken, match="being reviewed by carer until"):
        db.run(
            lambda s: drafts.confirm_reviewed(
                s, settings, supervisor, reference, text=None, category="service"
            )
        )
    confirmed = db.run(
        lambda s: drafts.confirm_reviewed(
            s, settings, carer, reference, text=None, category="service"
        )
    )
    assert (confirmed.status, confirmed.confirmed_text) == ("open", "الماء مقطوع")
