"""Through the real PBX: callers press keys once the IVR falls silent and speak Arabic; the
hotline's own dialplan, FastAGI IVR, AMI listener, worker and callback dialler handle them.

Each defect the real PBX showed (D1-D4 of issue 14, N1 and N2 found here) has its test below.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from sqlmodel import select

from casebook.models import (
    AttemptResult,
    Callback,
    CallbackReason,
    DraftState,
    Recording,
    RecordingKind,
    Transcript,
)
from tests.pbx.site import Site, wait_until
from tests.pbx.traffic import (
    CALL_PATIENCE,
    KEYED_ACCOUNT,
    STATUS_OWNER,
    STRANGER,
    Placed,
    Traffic,
)

pytestmark = pytest.mark.pbx


def only(traffic: Traffic, scenario: str) -> Placed:
    (placed,) = traffic.placed[scenario]
    return placed


def played(site: Site, channel: str) -> list[str]:
    """The sounds Asterisk's verbose log says it played on this channel, in order."""
    pattern = re.compile(rf"<{re.escape(channel)}> Playing '([^']+)\.slin'.*\(language 'ar'\)")
    return pattern.findall(site.log.read_text(errors="replace"))


def digits_said(sounds: list[str]) -> str:
    return "".join(s.removeprefix("digits/") for s in sounds if s.startswith("digits/"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_complaint_is_a_case_with_its_recordings_and_a_draft(traffic: Traffic) -> None:
    placed = only(traffic, "new-complaint")
    call = traffic.stored_call(placed.linkedid)
    assert call.caller_number == placed.caller.number
    assert call.recording_path and not call.recording_missing
    case = traffic.case_of(call)
    assert case is not None and case.reference
    assert (case.caller_number, case.category) == (placed.caller.number, "network")
    with traffic.db.session() as session:
        recordings = list(session.exec(select(Recording).where(Recording.case_id == case.id)))
    kinds = {r.kind: r for r in recordings}
    assert set(kinds) == {RecordingKind.CALL.value, RecordingKind.MESSAGE.value}
    message = kinds[RecordingKind.MESSAGE.value]
    assert message.duration_seconds and message.duration_seconds > 2  # the caller's speech

    def drafted() -> bool:
        finished = traffic.case_of(call)
        return finished is not None and finished.draft_state != DraftState.TRANSCRIBING.value

    assert wait_until(drafted, CALL_PATIENCE), "no draft from the caller's message"
    case = traffic.case_of(call)
    assert case is not None and case.draft_state == DraftState.READY.value and case.draft_text
    with traffic.db.session() as session:
        transcript = session.exec(
            select(Transcript).where(Transcript.recording_id == message.id)
        ).one()
    assert transcript.language == "ar"


def test_the_reference_is_read_back_twice_digit_by_digit(traffic: Traffic, site: Site) -> None:
    placed = only(traffic, "new-complaint")
    case = traffic.case_of(traffic.stored_call(placed.linkedid))
    assert case is not None and case.reference
    sounds = played(site, placed.hotline_channel)
    assert digits_said(sounds) == case.reference * 2
    assert "hotline/registered" in sounds and "hotline/thanks" in sounds
    assert "does not exist" not in site.log.read_text(errors="replace")


def test_an_account_number_keyed_after_the_message_is_on_the_case(
    traffic: Traffic, site: Site
) -> None:
    placed = only(traffic, "keypad-number")
    case = traffic.case_of(traffic.stored_call(placed.linkedid))
    assert case is not None and case.reference
    assert case.keypad_number == KEYED_ACCOUNT
    sounds = played(site, placed.hotline_channel)
    # Said back digit by digit in Arabic, then the reference twice as before.
    assert digits_said(sounds) == KEYED_ACCOUNT + case.reference * 2
    confirm = sounds.index("hotline/account_confirm")
    assert sounds.index("hotline/enter_account") < confirm < sounds.index("hotline/registered")


def test_a_caller_who_keys_no_account_number_goes_on_without_one(
    traffic: Traffic, site: Site
) -> None:
    placed = only(traffic, "new-complaint")
    case = traffic.case_of(traffic.stored_call(placed.linkedid))
    assert case is not None and case.keypad_number is None
    sounds = played(site, placed.hotline_channel)
    assert "hotline/enter_account" in sounds and "hotline/account_confirm" not in sounds


STATUS = [
    "status-owner",
    "status-owner-hash",
    "status-stranger",
    "status-stranger-hash",
]


@pytest.mark.parametrize("scenario", STATUS)
def test_status_by_phone_is_told(traffic: Traffic, site: Site, scenario: str) -> None:
    placed = only(traffic, scenario)
    traffic.stored_call(placed.linkedid)
    sounds = played(site, placed.hotline_channel)
    assert "hotline/not_found" not in sounds
    # The seeded case is a draft: its status, then when it is promised for.
    assert "hotline/status_draft" in sounds and "hotline/promised_by" in sounds


def test_a_status_enquiry_is_served_not_abandoned(traffic: Traffic) -> None:
    for scenario in ("status-owner", "status-owner-hash"):
        assert not traffic.stored_call(only(traffic, scenario).linkedid).abandoned
    assert traffic.callbacks_for(STATUS_OWNER) == []
    assert traffic.callbacks_for(STRANGER) == []


def test_option_0_reaches_an_agents_phone_through_the_queue(traffic: Traffic) -> None:
    placed = only(traffic, "agent")
    traffic.stored_call(placed.linkedid)
    answered = [
        block.message
        for block in traffic.driver.blocks
        if block.message.get("UserEvent") == "PbxAgentAnswered"
        and block.message.get("Linkedid") == placed.linkedid
    ]
    assert answered, "no agent's phone answered the caller"


def test_a_caller_an_agent_answered_is_served_not_abandoned(traffic: Traffic) -> None:
    placed = only(traffic, "agent")
    assert not traffic.stored_call(placed.linkedid).abandoned
    assert traffic.callbacks_for(placed.caller.number) == []


def test_an_abandoned_call_asks_exactly_one_callback(traffic: Traffic) -> None:
    placed = only(traffic, "abandoned")
    call = traffic.stored_call(placed.linkedid)
    assert call.abandoned and call.case_id is None
    (callback,) = traffic.callbacks_for(placed.caller.number)
    assert (callback.reason, callback.call_id) == (CallbackReason.ABANDONED.value, call.id)


def test_ten_concurrent_calls_are_each_stored_once_with_their_case(traffic: Traffic) -> None:
    group = traffic.placed["concurrent-10"]
    calls = [traffic.stored_call(placed.linkedid) for placed in group]
    assert [c.caller_number for c in calls] == [p.caller.number for p in group]
    assert len({c.case_id for c in calls if c.case_id is not None}) == len(group)


CALLBACKS = [
    ("callback-answered", AttemptResult.ANSWERED),
    ("callback-busy", AttemptResult.BUSY),
    ("callback-unanswered", AttemptResult.NO_ANSWER),
    ("callback-agent-busy", AttemptResult.BUSY),
]


@pytest.mark.parametrize(("scenario", "result"), CALLBACKS)
def test_a_callback_dial_stores_what_happened(
    traffic: Traffic, scenario: str, result: AttemptResult
) -> None:
    done = traffic.dials[scenario].result(CALL_PATIENCE)
    assert done.returncode == 0, done.stderr
    assert f": {result.value} (" in done.stdout
    with traffic.db.session() as session:
        callback = session.get(Callback, traffic.callback_ids[scenario])
    assert callback is not None and (callback.attempts, callback.last_result) == (1, result.value)


def test_two_agents_dialling_at_once_each_get_their_own_result(traffic: Traffic) -> None:
    away = traffic.dials["callback-at-once-away"].result(CALL_PATIENCE)
    answered = traffic.dials["callback-at-once-answered"].result(CALL_PATIENCE)
    assert ": answered (" in answered.stdout
    assert f": {AttemptResult.NO_ANSWER.value} (" in away.stdout


def test_an_answered_callbacks_recording_is_ingested_complete(traffic: Traffic) -> None:
    callback_id = traffic.callback_ids["callback-answered"]
    assert traffic.dials["callback-answered"].result(CALL_PATIENCE).returncode == 0
    # Over once its four Local halves (agent's phone, customer's phone) have hung up.
    traffic.wait_hung_up(traffic.callback_linkedid(callback_id))
    with traffic.db.session() as session:
        callback = session.get(Callback, callback_id)
        assert callback is not None
        (recording,) = session.exec(
            select(Recording).where(
                Recording.case_id == callback.case_id,
                Recording.kind == RecordingKind.CALLBACK.value,
            )
        )
    assert recording.duration_seconds and recording.duration_seconds > 1
    assert recording.sha256 == sha256(Path(recording.path))
