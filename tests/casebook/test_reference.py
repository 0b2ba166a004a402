from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebook.reference import (
    MODULUS,
    REFERENCE_LENGTH,
    InvalidReference,
    is_valid,
    normalise_reference,
    reference_for_id,
)

ids = st.integers(min_value=1, max_value=MODULUS - 1)


@given(ids)
def test_every_issued_reference_is_valid_and_phone_keyable(case_id: int) -> None:
    reference = reference_for_id(case_id)
    assert len(reference) == REFERENCE_LENGTH
    assert reference.isdigit()
    assert normalise_reference(reference) == reference


@given(ids, st.data())
def test_any_single_digit_error_is_rejected(case_id: int, data: st.DataObject) -> None:
    reference = reference_for_id(case_id)
    position = data.draw(st.integers(0, REFERENCE_LENGTH - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != reference[position]]))
    mistyped = reference[:position] + wrong + reference[position + 1 :]
    assert not is_valid(mistyped)


@given(ids, st.data())
def test_any_adjacent_swap_is_rejected(case_id: int, data: st.DataObject) -> None:
    reference = reference_for_id(case_id)
    swappable = [i for i in range(REFERENCE_LENGTH - 1) if reference[i] != reference[i + 1]]
    if not swappable:
        return
    i = data.draw(st.sampled_from(swappable))
    swapped = reference[:i] + reference[i + 1] + reference[i] + reference[i + 2 :]
    assert not is_valid(swapped)


@given(ids, ids)
def test_distinct_ids_never_share_a_reference(first: int, second: int) -> None:
    if first != second:
        assert reference_for_id(first) != reference_for_id(second)


def test_consecutive_cases_do_not_get_consecutive_references() -> None:
    first, second = (int(reference_for_id(i)[:-1]) for i in (1000, 1001))
    assert abs(first - second) > 1000


def test_arabic_indic_digits_and_separators_are_accepted() -> None:
    reference = reference_for_id(42)
    arabic = reference.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert normalise_reference(arabic) == reference
    assert normalise_reference(f"{reference[:3]} {reference[3:6]}-{reference[6:]}") == reference


@pytest.mark.parametrize(
    ("keyed", "reason"),
    [
        ("", "no reference number"),
        (" - ", "no reference number"),
        ("12345", "has 9 digits"),
        ("12345678a", "digits only"),
        ("1234567890", "has 9 digits"),
        ("*12345678", "digits only"),
    ],
)
def test_malformed_references_say_why(keyed: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        normalise_reference(keyed)


def test_ids_outside_the_reference_space_are_refused() -> None:
    for bad in (0, -1, MODULUS):
        with pytest.raises(ValueError, match="outside"):
            reference_for_id(bad)
