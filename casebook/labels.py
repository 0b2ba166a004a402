"""Arabic names of the codes the casebook stores, for people's views (the stored value, and the
API's value, stay the English code; the API sends the name beside it as ``<field>_label_ar``).

Two kinds: the casebook's own enums (named here, once), and the site's categories and
departments (named in the site's config, ``sla.category_labels_ar`` and
``cases.department_labels_ar``; a code the config does not name is shown as it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlmodel import SQLModel

from casebook.models import (
    Agent,
    AttemptResult,
    Callback,
    CallbackAttempt,
    CallbackReason,
    CallbackStatus,
    Case,
    CaseStatus,
    ContactMethod,
    DraftState,
    FollowUp,
    FollowUpResult,
    JobStatus,
    Priority,
    Recording,
    RecordingKind,
    Role,
    TranscriptionJob,
)
from casebook.settings import CasebookConfig
from casebook.workflow import STATUS_LABELS_AR

ENUM_LABELS_AR: dict[type[StrEnum], Mapping[str, str]] = {
    CaseStatus: {str(status): label for status, label in STATUS_LABELS_AR.items()},
    Role: {"agent": "موظف", "supervisor": "مشرف", "qa": "مراقب جودة", "admin": "مدير النظام"},
    Priority: {"low": "منخفضة", "normal": "عادية", "high": "عالية", "urgent": "عاجلة"},
    ContactMethod: {"phone": "هاتف", "sms": "رسالة نصية", "letter": "رسالة", "visit": "زيارة"},
    FollowUpResult: {
        "satisfied": "راضٍ",
        "not_satisfied": "غير راضٍ",
        "partially_satisfied": "راضٍ جزئياً",
        "no_answer": "لم يرد",
    },
    CallbackReason: {"follow_up": "متابعة بعد الحل", "abandoned": "مكالمة منقطعة"},
    CallbackStatus: {
        "pending": "بانتظار موظف",
        "assigned": "مسندة",
        "done": "تمت",
        "written": "يلزم خطاب",
        "cancelled": "ملغاة",
    },
    AttemptResult: {"answered": "رد", "busy": "مشغول", "no_answer": "لم يرد", "failed": "تعذر"},
    RecordingKind: {"call": "مكالمة", "message": "رسالة المتصل", "callback": "معاودة اتصال"},
    DraftState: {
        "transcribing": "قيد التفريغ",
        "ready": "جاهزة",
        "no_speech": "بلا كلام",
        "failed": "تعذر التفريغ",
    },
    JobStatus: {"queued": "في الانتظار", "running": "قيد التنفيذ", "done": "تمت", "failed": "فشلت"},
}

# Which enum each coded field holds, per table (``status`` means different things).
FIELD_ENUMS: dict[tuple[type[SQLModel], str], type[StrEnum]] = {
    (Case, "status"): CaseStatus,
    (Case, "priority"): Priority,
    (Case, "draft_state"): DraftState,
    (FollowUp, "method"): ContactMethod,
    (FollowUp, "result"): FollowUpResult,
    (Callback, "reason"): CallbackReason,
    (Callback, "status"): CallbackStatus,
    (Callback, "last_result"): AttemptResult,
    (CallbackAttempt, "result"): AttemptResult,
    (Recording, "kind"): RecordingKind,
    (TranscriptionJob, "status"): JobStatus,
}


def is_coded(model: type[SQLModel], field: str) -> bool:
    """Whether ``model.field`` holds a code that has an Arabic name."""
    return (
        field in ("category", "department")
        or (model is Agent and field == "roles")
        or (model, field) in FIELD_ENUMS
    )


def label_ar(config: CasebookConfig, model: type[SQLModel], field: str, value: Any) -> str | None:
    """The Arabic name of ``value`` stored in ``model.field``; None when it is not a code."""
    if value is None:
        return None
    code = str(value)
    if field == "category":
        return config.sla.category_labels_ar.get(code, code)
    if field == "department":
        return config.cases.department_labels_ar.get(code, code)
    if model is Agent and field == "roles" and isinstance(value, list):
        return "، ".join(ENUM_LABELS_AR[Role].get(role, role) for role in value)
    enum = FIELD_ENUMS.get((model, field))
    return None if enum is None else ENUM_LABELS_AR[enum].get(code, code)


def labels_ar(
    config: CasebookConfig, model: type[SQLModel], row: Mapping[str, Any]
) -> dict[str, str | None]:
    """``<field>_label_ar`` for every coded field of ``row`` (a row of ``model``), None where
    the field holds nothing, so every row of a kind has the same keys."""
    return {
        f"{field}_label_ar": label_ar(config, model, field, value)
        for field, value in row.items()
        if is_coded(model, field)
    }


# A call's state is worked out, not stored (casebook.call_status), and shown beside the others.
CALL_STATUS_LABELS_AR = {"live": "جارية", "abandoned": "متروكة", "complete": "مكتملة"}
