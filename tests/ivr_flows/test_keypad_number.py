"""The account or line number keyed after the message (issue 19): keyed, skipped, too long,
not digits, hung up on; on the in-memory backend, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ivr_flows.server import AgiServer
from tests.ivr_flows.conftest import InspectableBackend
from tests.ivr_flows.fake_asterisk import Caller, CallLog, place_call

NEW_BILLING = ["1", "1"]  # main menu: new complaint; category: billing
UNIQUEID = "1763800000.101"
ASK = "GET DATA hotline/enter_account 6000 21"


def keyed_call(server: AgiServer, *answers: str, hangup_on: str | None = None) -> CallLog:
    """A complaint call whose caller answers the number question with ``answers`` in turn
    (with # where they press it; "" is a timeout)."""
    return place_call(server.address, Caller(keys=[*NEW_BILLING, *answers], hangup_on=hangup_on))


def after_message(log: CallLog) -> list[str]:
    """What the caller heard after their message, up to the reference."""
    played = log.played()
    return played[played.index("hotline/record_message") + 1 : played.index("hotline/registered")]


def test_a_keyed_number_is_stored_and_said_back_before_the_reference(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = keyed_call(agi_server, "0912345678901#")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number == "0912345678901"
    assert ASK in log.commands
    assert after_message(log) == ["hotline/enter_account", "hotline/account_confirm"]
    # Said back digit by digit (SAY DIGITS plays digits/N), then the reference twice as before.
    assert log.said_digits() == ["0912345678901", case.reference, case.reference]


def test_the_longest_number_is_taken_whole(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    keyed_call(agi_server, "1" * 20 + "#")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number == "1" * 20


@pytest.mark.parametrize(
    "answer", ["", "#", "*", "*#"], ids=["timeout", "hash", "star", "star-hash"]
)
def test_skipping_registers_without_a_number_and_goes_on(
    agi_server: AgiServer, ivr_backend: InspectableBackend, answer: str
) -> None:
    log = keyed_call(agi_server, answer)

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number is None
    assert after_message(log) == ["hotline/enter_account"]  # asked once, nothing said back
    assert log.said_digits() == [case.reference, case.reference]
    assert log.played()[-1] == "hotline/thanks"


@pytest.mark.parametrize(
    "wrong", ["1" * 21, "12*34#", "*123#"], ids=["too-long", "star-inside", "star-first"]
)
def test_a_wrong_number_is_asked_again_then_taken(
    agi_server: AgiServer, ivr_backend: InspectableBackend, wrong: str
) -> None:
    log = keyed_call(agi_server, wrong, "4455#")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number == "4455"
    assert after_message(log) == [
        "hotline/enter_account",
        "hotline/invalid_account",
        "hotline/enter_account",
        "hotline/account_confirm",
    ]


def test_wrong_numbers_every_time_register_without_one(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = keyed_call(agi_server, "1" * 21, "9*9#")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number is None
    assert after_message(log).count("hotline/invalid_account") == 2
    assert log.said_digits() == [case.reference, case.reference]


def test_hanging_up_at_the_number_question_still_registers_the_complaint(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = keyed_call(agi_server, hangup_on="GET DATA hotline/enter_account")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number is None
    assert ivr_backend.case_count() == 1
    assert log.variables()["HOTLINE_CASE"] == case.reference
    assert log.said_digits() == []


def test_hanging_up_while_the_number_is_said_back_keeps_it(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    keyed_call(agi_server, "777#", hangup_on="STREAM FILE hotline/account_confirm")

    case = ivr_backend.case_for_uniqueid(UNIQUEID)
    assert case is not None and case.keypad_number == "777"
    assert ivr_backend.case_count() == 1
