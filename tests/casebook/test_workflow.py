from __future__ import annotations

import itertools

import pytest

from casebook.errors import IllegalTransition
from casebook.models import CaseStatus
from casebook.workflow import ALLOWED_MOVES, STATUS_LABELS_AR, check_move

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


def test_final_states_have_no_way_out() -> None:
    assert not ALLOWED_MOVES[S.CLOSED]
    assert not ALLOWED_MOVES[S.REJECTED]
    with pytest.raises(IllegalTransition, match="none"):
        check_move(S.CLOSED, S.OPEN)


def test_every_state_has_an_arabic_label() -> None:
    assert set(STATUS_LABELS_AR) == set(CaseStatus)
