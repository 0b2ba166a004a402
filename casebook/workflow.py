"""The case states and the moves between them: the one table every service consults."""

from __future__ import annotations

from casebook.access import Permission
from casebook.errors import IllegalTransition
from casebook.models import CaseStatus

S = CaseStatus

ALLOWED_MOVES: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.DRAFT: frozenset({S.OPEN, S.REJECTED}),
    S.OPEN: frozenset({S.IN_PROGRESS, S.ESCALATED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.ESCALATED}),
    # A resolved case is followed up; a fix found not applied goes back to work. Closing a
    # resolved case without a follow-up is the supervisor's exception (see cases.close_case).
    S.RESOLVED: frozenset({S.FOLLOW_UP, S.IN_PROGRESS, S.ESCALATED, S.CLOSED}),
    S.FOLLOW_UP: frozenset({S.CLOSED, S.IN_PROGRESS, S.ESCALATED}),
    S.ESCALATED: frozenset({S.IN_PROGRESS, S.RESOLVED, S.ESCALATED, S.CLOSED}),
    # Reopened by a supervisor, with a reason, when the fix did not hold (cases.reopen_case):
    # see MOVE_PERMISSIONS.
    S.CLOSED: frozenset({S.IN_PROGRESS}),
    S.REJECTED: frozenset(),
}

# Moves that only a role may make, whoever else may work on the case (casebook.cases.move
# checks them): a closed case goes back to work only by a supervisor's decision.
MOVE_PERMISSIONS: dict[tuple[CaseStatus, CaseStatus], Permission] = {
    (S.CLOSED, S.IN_PROGRESS): "supervise_cases",
}

# Waiting for the caller's verdict on the fix: only then is a follow-up callback wanted (any
# other move cancels the open one, see cases.move).
AWAITING_VERDICT: frozenset[CaseStatus] = frozenset({S.RESOLVED, S.FOLLOW_UP})

# Arabic names for people; the stored value stays the English code.
STATUS_LABELS_AR: dict[CaseStatus, str] = {
    S.DRAFT: "مسودة",
    S.OPEN: "مفتوحة",
    S.IN_PROGRESS: "قيد المعالجة",
    S.RESOLVED: "تم الحل",
    S.FOLLOW_UP: "قيد المتابعة",
    S.CLOSED: "مغلقة",
    S.ESCALATED: "مصعّدة",
    S.REJECTED: "ليست شكوى",
}


def can_move(current: CaseStatus, target: CaseStatus) -> bool:
    return target in ALLOWED_MOVES[current]


def check_move(current: CaseStatus | str, target: CaseStatus) -> None:
    source = CaseStatus(current)
    if not can_move(source, target):
        allowed = ", ".join(sorted(s.value for s in ALLOWED_MOVES[source])) or "none (final)"
        raise IllegalTransition(
            f"a case that is {source.value} cannot become {target.value}; allowed: {allowed}"
        )
