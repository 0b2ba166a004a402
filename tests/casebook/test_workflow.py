from __future__ import annotations

import itertools

import pytest

from casebook.errors import IllegalTransition
from casebook.models import CaseStatus
from casebook.workflow import ALLOWED_MOVES, MOVE_PERMISSIONS, STATUS_LABELS_AR, check_move

S = CaseStatus
ILLEGAL = [
    (source, target)
    for source, target in itertools.product(CaseStatus, CaseStatus)
    if target not in ALLOWED_MOVES[source]
]


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: s.value)
def test_every_illegal_move_is_refused_with_the_allowed_ones_named(
    source: CaseStatus, target: CaseStatus
) -> None:
    with pytest.raises(IllegalTransition, match=f"{source.value} cannot become {target.value}"):
        check_move(source, target)


def test_the_complaint_path_is_allowed() -> None:
    path = [S.DRAFT, S.OPEN, S.IN_PROGRESS, S.RESOLVED, S.FOLLOW_UP, S.CLOSED]
    for source, target in itertools.pairwise(path):
        check_move(source, target)


def test_a_rejected_draft_has_no_way_out_and_a_closed_case_only_back_to_work() -> None:
    assert not ALLOWED_MOVES[S.REJECTED]
    with pytest.raises(IllegalTransition, match="none"):
        check_move(S.REJECTED, S.OPEN)
    assert ALLOWED_MOVES[S.CLOSED] == {S.IN_PROGRESS}
    with pytest.raises(IllegalTransition, match="allowed: in_progress"):
        check_move(S.CLOSED, S.OPEN)


def test_every_permissioned_move_is_an_allowed_move() -> None:
    for source, target in MOVE_PERMISSIONS:
        check_move(source, target)
    assert MOVE_PERMISSIONS[(S.CLOSED, S.IN_PROGRESS)] == "supervise_cases"


def test_every_state_has_an_arabic_label() -> None:
    assert set(STATUS_LABELS_AR) == set(CaseStatus)
