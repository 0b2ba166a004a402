"""Every stored code has its Arabic name for people's views (casebook.labels)."""

from __future__ import annotations

from casebook.labels import ENUM_LABELS_AR, FIELD_ENUMS, label_ar, labels_ar
from casebook.models import Agent, Callback, Case, FollowUp, Recording
from hotline.app.config import Settings


def test_every_value_of_every_labelled_enum_has_an_arabic_name() -> None:
    for enum in set(FIELD_ENUMS.values()):
        names = ENUM_LABELS_AR[enum]
        assert set(names) == {member.value for member in enum}, enum.__name__
        assert all(any("\u0600" <= char <= "\u06ff" for char in name) for name in names.values())


def test_the_fields_people_saw_in_english_are_named_in_arabic(settings: Settings) -> None:
    row = {
        "reference": "889862157",
        "status": "in_progress",
        "category": "network",
        "department": "customer-care",
        "draft_state": "ready",
    }
    assert labels_ar(settings, Case, row) == {
        "status_label_ar": "قيد المعالجة",
        "category_label_ar": "الشبكة",
        "department_label_ar": "خدمة العملاء",
        "draft_state_label_ar": "جاهزة",
    }
    followup = {"result": "partially_satisfied", "method": "phone", "notes": "x"}
    assert labels_ar(settings, FollowUp, followup) == {
        "result_label_ar": "راضٍ جزئياً",
        "method_label_ar": "هاتف",
    }
    # "status" of a callback is not a case's status.
    assert label_ar(settings, Callback, "status", "pending") == "بانتظار موظف"
    assert label_ar(settings, Recording, "kind", "message") == "رسالة المتصل"
    assert label_ar(settings, Agent, "roles", ["agent", "qa"]) == "موظف، مراقب جودة"


def test_a_code_the_site_does_not_name_is_shown_as_it_is(settings: Settings) -> None:
    assert label_ar(settings, Case, "category", "roaming") == "roaming"
    assert label_ar(settings, Case, "priority", None) is None
    assert label_ar(settings, Case, "draft_text", "نص") is None
