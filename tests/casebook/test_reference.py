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
# Two sites' reference keys (a real site's is random, made by `hotline db upgrade`).
KEY = bytes(range(32))
OTHER_KEY = bytes(range(32, 64))


@given(ids)
def test_every_issued_reference_is_valid_and_phone_keyable(case_id: int) -> None:
    reference = reference_for_id(case_id, KEY)
    assert len(reference) == REFERENCE_LENGTH
    assert reference.isdigit()
    assert normalise_reference(reference) == reference


@given(ids, st.data())
def test_any_single_digit_error_is_rejected(case_id: int, data: st.DataObject) -> None:
    reference = reference_for_id(case_id, KEY)
    position = data.draw(st.integers(0, REFERENCE_LENGTH - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != reference[position]]))
    mistyped = reference[:position] + wrong + reference[position + 1 :]
    assert not is_valid(mistyped)


@given(ids, st.data())
def test_any_adjacent_swap_is_rejected(case_id: int, data: st.DataObject) -> None:
    reference = reference_for_id(case_id, KEY)
    swappable = [i for i in range(REFERENCE_LENGTH - 1) if reference[i] != reference[i + 1]]
    if not swappable:
        return
    i = data.draw(st.sampled_from(swappable))
    swapped = reference[:i] + reference[i + 1] + reference[i] + reference[i + 2 :]
    assert not is_valid(swapped)


@given(ids, ids)
def test_distinct_ids_never_share_a_reference(first: int, second: int) -> None:
    if first != second:
        assert reference_for_id(first, KEY) != reference_for_id(second, KEY)


def test_consecutive_cases_do_not_get_consecutive_references() -> None:
    first, second = (int(reference_for_id(i, KEY)[:-1]) for i in (1000, 1001))
    assert abs(first - second) > 1000


def test_arabic_indic_digits_and_separators_are_accepted() -> None:
    reference = reference_for_id(42, KEY)
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
            reference_for_id(bad, KEY)


def test_two_sites_with_different_keys_number_the_same_ids_differently() -> None:
    ours = [reference_for_id(i, KEY) for i in range(1, 1001)]
    theirs = [reference_for_id(i, OTHER_KEY) for i in range(1, 1001)]
    # Two independent permutations of 10^8 agree on an id about once in 10^8.
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) <= 1
    assert set(ours).isdisjoint(theirs[:10])  # one site's first numbers are not the other's


def test_the_same_key_always_gives_the_same_numbering() -> None:
    assert [reference_for_id(i, KEY) for i in (1, 2, 3)] == [
        reference_for_id(i, bytes(range(32))) for i in (1, 2, 3)
    ]


def test_the_keyed_mapping_is_a_bijection_over_a_sample() -> None:
    # The first 100,000 ids and 20,000 scattered over the whole space: no body repeats.
    sample = [*range(1, 100_001), *range(4_999, MODULUS, MODULUS // 20_000)]
    bodies = {reference_for_id(i, KEY)[:-1] for i in sample}
    assert len(bodies) == len(set(sample))


def test_another_attempt_is_another_reference_for_the_same_id() -> None:
    tries = [reference_for_id(7, KEY, attempt) for attempt in range(5)]
    assert len(set(tries)) == 5
    assert all(is_valid(reference) for reference in tries)


def test_no_key_no_reference() -> None:
    with pytest.raises(ValueError, match="a reference key is needed"):
        reference_for_id(1, b"")
