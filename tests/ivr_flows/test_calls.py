"""Whole calls over TCP: the FastAGI server, the flow and a scripted Asterisk."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casebook.reference import reference_for_id
from hotline.app.config import Settings
from ivr_flows.arabic import date_sounds
from ivr_flows.backend import RegisteredComplaint
from ivr_flows.server import AgiServer
from tests.ivr_flows.conftest import InspectableBackend, SpyBackend
from tests.ivr_flows.fake_asterisk import VOICE, Caller, CallLog, Take, place_call
from tests.ivr_flows.memory_backend import MemoryBackend

NEW_BILLING = ["1", "1"]  # main menu: new complaint; category: billing


def call(server: AgiServer, caller: Caller) -> CallLog:
    return place_call(server.address, caller)


def status_prompts(log: CallLog) -> list[str]:
    return [name for name in log.played() if "status_" in name or "/date/" in name]


def test_new_complaint_registers_one_case_and_reads_its_reference(
    agi_server: AgiServer, ivr_backend: InspectableBackend, ivr_settings: Settings
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING))

    case = ivr_backend.case_for_uniqueid("1763800000.101")
    assert case is not None and ivr_backend.case_count() == 1
    assert case.linkedid == "1763800000.100"
    assert case.caller_number == "0912345678"
    assert case.category == "billing"
    message = ivr_settings.recordings.root.resolve() / "message-1763800000.101.wav"
    assert case.message_path == str(message) and message.stat().st_size > 44
    assert f'SAY DIGITS "{case.reference}" ""' in log.commands
    assert log.said_digits() == [case.reference, case.reference]
    assert log.variables()["HOTLINE_CASE"] == case.reference
    assert log.user_events() == [
        "HotlineMenu,Choice: main_menu:1,Uniqueid: 1763800000.101",
        "HotlineMenu,Choice: category_menu:1,Uniqueid: 1763800000.101",
        f"HotlineMessage,File: {message},Status: dtmf,Uniqueid: 1763800000.101",
    ]
    record = next(c for c in log.commands if c.startswith("RECORD FILE"))
    base = message.with_name("message-1763800000.101")
    assert record == f'RECORD FILE "{base}" wav "#" 180000 0 beep s=5'


def test_the_promised_date_is_said_in_arabic_prompts_in_local_time(
    spy: tuple[AgiServer, SpyBackend],
) -> None:
    server, backend = spy
    log = call(server, Caller(keys=NEW_BILLING))

    promised_by = backend.registered[0].promised_by
    local = promised_by.astimezone(ZoneInfo("Africa/Tripoli")).date()
    expected = ["hotline/promised_by", *date_sounds(local), "hotline/thanks"]
    played = log.played()
    assert played[-len(expected) :] == expected


def test_linkedid_is_asked_for_when_the_dialplan_did_not_pass_it(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, linkedid=None))

    assert log.commands[0] == 'GET VARIABLE "CHANNEL(linkedid)"'
    case = ivr_backend.case_for_uniqueid("1763800000.101")
    assert case is not None and case.linkedid == "1763800000.101"


def test_an_agi_retry_of_the_same_call_gives_the_same_case(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    first = call(agi_server, Caller(keys=NEW_BILLING))
    again = call(agi_server, Caller(keys=NEW_BILLING))

    assert ivr_backend.case_count() == 1
    assert first.said_digits() == again.said_digits()


def test_hang_up_during_recording_with_audio_still_creates_the_case(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("hangup", VOICE[:8000])]))

    case = ivr_backend.case_for_uniqueid("1763800000.101")
    assert case is not None and ivr_backend.case_count() == 1
    # Set on the dead channel (res_agi allows it) so the AMI listener still hears of the case.
    assert log.variables()["HOTLINE_CASE"] == case.reference
    assert log.said_digits() == []
    assert log.commands[-1].startswith("SET VARIABLE")


def test_hang_up_reported_without_a_note_is_understood_too(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    call(
        agi_server,
        Caller(keys=NEW_BILLING, takes=[Take("hangup", VOICE[:8000], hangup_note=False)]),
    )

    assert ivr_backend.case_count() == 1


def test_hang_up_during_recording_without_audio_creates_nothing(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("hangup", 0)]))

    assert ivr_backend.case_count() == 0
    assert "HOTLINE_CASE" not in log.variables()


def test_hang_up_before_recording_creates_nothing(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, hangup_on="STREAM FILE hotline/record"))

    assert ivr_backend.case_count() == 0
    # result=-1, then HANGUP + 511 to the question whether the channel is still up: over.
    assert log.commands[-2:] == ['STREAM FILE hotline/record_message "" 0', "CHANNEL STATUS"]


def test_hang_up_during_the_welcome_ends_the_ivr_at_its_next_command(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, hangup_on="STREAM FILE hotline/welcome"))

    # The welcome's result=-1 alone could be a missing sound; CHANNEL STATUS's 511 says hang-up.
    assert log.played() == ["hotline/welcome"]
    assert log.commands[-1] == "CHANNEL STATUS"
    assert ivr_backend.case_count() == 0


def test_silence_is_asked_again_then_a_polite_goodbye(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("timeout", 0)] * 2))

    assert ivr_backend.case_count() == 0
    assert log.played()[-4:] == [
        "hotline/record_message",
        "hotline/no_message",
        "hotline/record_message",
        "hotline/no_message_goodbye",
    ]


def test_second_take_after_silence_registers(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(
        agi_server, Caller(keys=NEW_BILLING, takes=[Take("timeout", 0), Take("timeout", VOICE)])
    )

    assert ivr_backend.case_count() == 1
    assert len(log.said_digits()) == 2


def test_menu_timeouts_and_wrong_keys_end_in_a_goodbye_after_three_tries(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(keys=["", "7", ""]))

    assert log.played() == [
        "hotline/welcome",
        "hotline/main_menu",
        "hotline/no_choice",
        "hotline/main_menu",
        "hotline/invalid_choice",
        "hotline/main_menu",
        "hotline/no_choice",
        "hotline/goodbye_tries",
    ]
    assert ivr_backend.case_count() == 0


def test_a_wrong_key_then_a_right_one_goes_on(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(keys=["9", "0"]))

    assert log.played()[-1] == "hotline/transfer_agent"
    assert log.variables()["HOTLINE_NEXT"] == "agent"


def registered(server: AgiServer, backend: InspectableBackend, number: str) -> str:
    call(server, Caller(uniqueid="1763700000.1", callerid=number, keys=NEW_BILLING))
    case = backend.case_for_uniqueid("1763700000.1")
    assert case is not None
    return case.reference


def test_status_for_the_callers_own_number_is_read_out(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")

    log = call(agi_server, Caller(callerid="0912345678", keys=["2", reference]))

    assert "hotline/enter_last4" not in log.played()
    assert status_prompts(log)[0] == "hotline/status_draft"
    assert log.played()[-1] == "hotline/goodbye"


def test_status_from_another_number_hears_nothing_about_the_case(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")
    # A valid reference of another site's numbering: not a case here.
    other_site = b"another site's reference key 32b"
    other_valid = next(
        r for i in range(1, 50) if (r := reference_for_id(i, other_site)) != reference
    )

    existing = call(agi_server, Caller(callerid="0925550000", keys=["2", reference, ""] * 3))
    missing = call(agi_server, Caller(callerid="0925550000", keys=["2", other_valid, ""] * 3))

    assert status_prompts(existing) == []
    assert existing.played() == missing.played()  # not even whether the case exists
    assert "hotline/not_found" in existing.played()


def test_wrong_last4_hears_the_same_as_not_found(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")

    log = call(agi_server, Caller(callerid="", keys=["2", reference, "1111"]))

    assert status_prompts(log) == []
    assert log.played()[3:5] == ["hotline/enter_last4", "hotline/not_found"]


def test_status_from_another_number_with_the_right_last4_is_read_out(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")

    log = call(agi_server, Caller(callerid="0925550000", keys=["2", reference, "5678"]))

    assert status_prompts(log)[0] == "hotline/status_draft"
    assert status_prompts(log)[1:] != []  # draft: the promised date follows


def test_wrong_and_mistyped_references_are_refused_without_a_lookup(
    spy: tuple[AgiServer, SpyBackend],
) -> None:
    server, backend = spy
    call(server, Caller(uniqueid="1763700000.1", keys=NEW_BILLING))
    reference = backend.registered[0].reference
    i = next(i for i in range(len(reference) - 1) if reference[i] != reference[i + 1])
    swapped = reference[:i] + reference[i + 1] + reference[i] + reference[i + 2 :]
    mistyped = reference[:-1] + str((int(reference[-1]) + 1) % 10)

    log = call(server, Caller(keys=["2", swapped, mistyped, reference[:5]]))

    assert log.played().count("hotline/invalid_reference") == 3
    assert log.played()[-1] == "hotline/goodbye_tries"
    assert backend.lookups == []


def test_status_with_no_digits_is_asked_again(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(keys=["2", "", "", ""]))

    assert log.played().count("hotline/no_reference") == 3


class FailingBackend(MemoryBackend):
    def register_complaint(self, **kwargs: Any) -> RegisteredComplaint:
        raise RuntimeError("database is down")


def test_a_casebook_failure_is_told_to_the_caller(ivr_settings: Settings) -> None:
    with AgiServer(ivr_settings, FailingBackend(), port=0) as server:
        log = call(server, Caller(keys=NEW_BILLING))

    assert log.played()[-1] == "hotline/system_error"
    assert log.said_digits() == []


def test_a_silent_asterisk_is_dropped_and_the_server_goes_on(
    ivr_settings: Settings, ivr_backend: InspectableBackend
) -> None:
    ivr_settings.agi.command_timeout = 0.3
    with AgiServer(ivr_settings, ivr_backend, port=0) as server:
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(b"agi_network: yes\nagi_uniqueid: 1.1\nagi_arg_1: 1.1\n\n")
            with sock.makefile("rb") as rfile:
                first = rfile.readline()  # the IVR's first command, never answered
                assert rfile.readline() == b""  # the server gave up and closed
        assert first.startswith(b"STREAM FILE hotline/welcome")
        log = call(server, Caller(keys=NEW_BILLING))
    assert len(log.said_digits()) == 2


def test_fifty_concurrent_calls_lose_and_duplicate_nothing(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    callers = [
        Caller(uniqueid=f"1763900000.{n}", linkedid=f"1763900000.{n}", callerid=f"09100{n:05d}",
               keys=NEW_BILLING)
        for n in range(50)
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=50) as pool:
        logs = list(pool.map(lambda c: call(agi_server, c), callers))

    assert ivr_backend.case_count() == 50
    references = set()
    for caller, log in zip(callers, logs, strict=True):
        case = ivr_backend.case_for_uniqueid(caller.uniqueid)
        assert case is not None and case.caller_number == caller.callerid
        assert log.said_digits() == [case.reference, case.reference]
        references.add(case.reference)
    assert len(references) == 50


def test_recordings_folder_is_created(ivr_settings: Settings, tmp_path: Path) -> None:
    ivr_settings.recordings.root = tmp_path / "new" / "recordings"
    with AgiServer(ivr_settings, MemoryBackend(), port=0):
        assert ivr_settings.recordings.root.is_dir()


def test_a_withheld_number_and_a_strange_linkedid_are_handled(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    log = call(agi_server, Caller(callerid="unknown", linkedid="../../etc", keys=NEW_BILLING))

    case = ivr_backend.case_for_uniqueid("1763800000.101")
    assert case is not None and case.caller_number is None
    assert case.linkedid == "1763800000.101"  # asked for with GET VARIABLE instead
    assert log.commands[0] == 'GET VARIABLE "CHANNEL(linkedid)"'


def test_stop_cuts_calls_still_waiting_for_asterisk(
    ivr_settings: Settings, ivr_backend: InspectableBackend
) -> None:
    server = AgiServer(ivr_settings, ivr_backend, port=0)
    server.start()
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(b"agi_network: yes\nagi_uniqueid: 1.2\nagi_arg_1: 1.2\n\n")
        with sock.makefile("rb") as rfile:
            assert rfile.readline().startswith(b"STREAM FILE")
            server.stop(grace=0)
            assert rfile.readline() == b""


# -- issue 14 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference_end", "last4_end"), [("#", "#"), ("#", ""), ("", "#"), ("", "")]
)
def test_status_from_another_number_with_or_without_hash(
    agi_server: AgiServer, ivr_backend: InspectableBackend, reference_end: str, last4_end: str
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")

    keys = ["2", reference + reference_end, "5678" + last4_end]
    log = call(agi_server, Caller(callerid="0925550000", keys=keys))

    assert status_prompts(log)[0] == "hotline/status_draft"
    assert "hotline/not_found" not in log.played()


def test_status_from_the_cases_number_with_hash(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")

    log = call(agi_server, Caller(callerid="0912345678", keys=["2", reference + "#"]))

    assert status_prompts(log)[0] == "hotline/status_draft"
    assert log.played()[-1] == "hotline/goodbye"


HANGUP_POINTS = [
    "STREAM FILE hotline/welcome",
    "GET DATA hotline/main_menu",
    "GET DATA hotline/category_menu",
    "STREAM FILE hotline/record_message",
    "RECORD FILE",
    "STREAM FILE hotline/registered",
    "SAY DIGITS",
    "STREAM FILE hotline/promised_by",
    "STREAM FILE hotline/thanks",
]
STATUS_HANGUP_POINTS = [
    "GET DATA hotline/enter_reference",
    "GET DATA hotline/enter_last4",
    "STREAM FILE hotline/status_draft",
]


@pytest.mark.parametrize("where", HANGUP_POINTS + STATUS_HANGUP_POINTS)
def test_a_hang_up_anywhere_is_a_clean_end(
    ivr_settings: Settings, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    backend = MemoryBackend()
    with AgiServer(ivr_settings, backend, port=0) as server:
        call(server, Caller(uniqueid="1763700000.1", keys=NEW_BILLING))
        reference = next(iter(backend.cases))
        keys = NEW_BILLING if where in HANGUP_POINTS else ["2", reference + "#", "5678#"]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ivr_flows"):
            log = call(server, Caller(callerid="0925550000", keys=keys, hangup_on=where))

    assert any(command.startswith(where) for command in log.commands)
    troubles = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert troubles == []
    assert [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()] == [
        "call 1763800000.101: caller hung up"
    ]


@pytest.mark.parametrize(
    "takes",
    [
        [Take("timeout", 0)] * 2,  # Asterisk heard no frame at all: a header
        [Take("hangup", 0)],
        [Take("timeout", 16_000)] * 2,  # the second of silence RECORD FILE keeps (zeros)
        [Take("hangup", 16_000)],
    ],
)
def test_a_caller_who_says_nothing_leaves_no_message_file(
    agi_server: AgiServer, ivr_backend: InspectableBackend, ivr_settings: Settings,
    takes: list[Take],
) -> None:  # fmt: skip
    log = call(agi_server, Caller(keys=NEW_BILLING, takes=takes))

    assert any(command.startswith("RECORD FILE") for command in log.commands)
    assert ivr_backend.case_count() == 0
    assert list(ivr_settings.recordings.root.iterdir()) == []


def test_a_symlink_at_the_message_path_is_neither_followed_nor_removed(
    agi_server: AgiServer, ivr_backend: InspectableBackend, ivr_settings: Settings,
    tmp_path: Path,
) -> None:  # fmt: skip
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"RIFF" + bytes(2000))
    link = ivr_settings.recordings.root / "message-1763800000.101.wav"
    link.symlink_to(outside)

    call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("timeout", 0)] * 2))

    assert ivr_backend.case_count() == 0
    assert link.is_symlink() and outside.read_bytes() == b"RIFF" + bytes(2000)


def test_a_key_pressed_during_the_welcome_is_the_main_menu_choice(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(during={"hotline/welcome": "0"}))

    assert log.commands[0] == 'STREAM FILE hotline/welcome "120" 0'
    assert log.played() == ["hotline/welcome", "hotline/transfer_agent"]
    assert log.user_events()[0] == "HotlineMenu,Choice: main_menu:0,Uniqueid: 1763800000.101"
    assert log.variables()["HOTLINE_NEXT"] == "agent"


def test_a_key_no_menu_choice_uses_does_not_cut_the_welcome(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(during={"hotline/welcome": "5"}, keys=["0"]))

    assert log.played() == ["hotline/welcome", "hotline/main_menu", "hotline/transfer_agent"]


def test_every_choice_is_kept_on_the_channel(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(keys=["7", *NEW_BILLING]))

    assert log.settings_of("HOTLINE_CHOICES") == ["main_menu:1", "main_menu:1,category_menu:1"]


def test_a_registered_complaint_is_an_outcome_before_its_reference_is_read(
    agi_server: AgiServer,
) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING))

    assert log.settings_of("HOTLINE_OUTCOME") == ["registered"]
    outcome = log.commands.index('SET VARIABLE "HOTLINE_OUTCOME" "registered"')
    first_digits = next(i for i, c in enumerate(log.commands) if c.startswith("SAY DIGITS"))
    assert outcome < first_digits


def test_a_caller_who_hangs_up_after_speaking_was_served(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("hangup", VOICE[:8000])]))

    assert log.settings_of("HOTLINE_OUTCOME") == ["registered"]


def test_status_answers_are_an_outcome_found_or_not(
    agi_server: AgiServer, ivr_backend: InspectableBackend
) -> None:
    reference = registered(agi_server, ivr_backend, "0912345678")
    found = call(agi_server, Caller(callerid="0912345678", keys=["2", reference]))
    stranger = call(agi_server, Caller(callerid="0925550000", keys=["2", reference, ""] * 3))

    assert found.settings_of("HOTLINE_OUTCOME") == ["status"]
    assert stranger.settings_of("HOTLINE_OUTCOME") == ["status"]  # set once, not per try


def test_no_outcome_without_service(agi_server: AgiServer) -> None:
    invalid = call(agi_server, Caller(keys=["2", "123456789", "", ""]))
    silent = call(agi_server, Caller(keys=NEW_BILLING, takes=[Take("timeout", 0)] * 2))
    no_choice = call(agi_server, Caller(keys=["", "", ""]))

    for log in (invalid, silent, no_choice):
        assert "HOTLINE_OUTCOME" not in log.variables()


def test_an_agent_request_is_an_outcome(agi_server: AgiServer) -> None:
    log = call(agi_server, Caller(keys=["0"]))

    assert log.settings_of("HOTLINE_OUTCOME") == ["agent"]
    assert log.commands[-2:] == [
        'SET VARIABLE "HOTLINE_OUTCOME" "agent"',
        'SET VARIABLE "HOTLINE_NEXT" "agent"',
    ]
