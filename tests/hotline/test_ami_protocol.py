"""The framer and parser: any chunking, repeated keys, bad bytes, garbage — never a crash."""

from __future__ import annotations

import random

import pytest

from hotline.ami_protocol import AmiFramer, ParseStats, iter_messages, parse_block, render
from tests.hotline.conftest import FIXTURES

RECORDING = (FIXTURES / "one-call.server.raw").read_bytes()


def frame_in_chunks(data: bytes, seed: int) -> tuple[list[str], AmiFramer]:
    rng = random.Random(seed)
    framer = AmiFramer(expect_banner=True)
    names: list[str] = []
    position = 0
    while position < len(data):
        size = rng.randint(1, 300)
        names += [m.name for m in framer.feed(data[position : position + size])]
        position += size
    framer.close()
    return names, framer


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_gives_the_same_messages(seed: int) -> None:
    whole = [m.name for m in iter_messages(RECORDING, expect_banner=True, stats=ParseStats())]
    names, framer = frame_in_chunks(RECORDING, seed)
    assert names == whole
    assert len(names) == 81  # one-call.meta.json: "messages": 81
    assert framer.banner == "Asterisk Call Manager/11.0.0"
    assert framer.stats.warnings == 0


def test_repeated_keys_and_empty_values_are_kept() -> None:
    messages = list(iter_messages(RECORDING, expect_banner=True, stats=ParseStats()))
    newchannel = next(m for m in messages if m.name == "Newchannel")
    assert newchannel.get_all("ChanVariable") == ["HOTLINE_CASE=", "MIXMONITOR_FILENAME="]
    assert newchannel["AccountCode"] == ""  # "AccountCode: " on the wire
    assert newchannel.variables() == {"HOTLINE_CASE": "", "MIXMONITOR_FILENAME": ""}
    originate = next(m for m in messages if m.name == "OriginateResponse")
    assert originate.variables() == {"HOTLINE_CASE": "", "MIXMONITOR_FILENAME": ""}
    bridge = next(m for m in messages if m.name == "LocalBridge")
    assert len(bridge.get_all("LocalOneChanVariable")) == 2
    user_event = next(m for m in messages if m.get("UserEvent") == "HotlineRecording")
    # The dialplan's body repeats Uniqueid and Linkedid after the channel's own headers.
    assert user_event.get_all("Linkedid") == ["1795370976.8", "1795370976.8"]
    assert user_event["Linkedid"] == "1795370976.8"


def test_invalid_utf8_is_replaced_and_counted() -> None:
    framer = AmiFramer(expect_banner=False)
    wire = b"Event: NewCallerid\r\nCallerIDName: \xd8\xb9\xff\xfe\r\nUniqueid: 1.1\r\n\r\n"
    arabic = "Event: NewCallerid\r\nCallerIDName: عبد الله\r\n\r\n".encode()
    messages = framer.feed(wire + arabic)
    assert messages[0]["CallerIDName"] == "ع\ufffd\ufffd"
    assert messages[0]["Uniqueid"] == "1.1"
    assert messages[1]["CallerIDName"] == "عبد الله"
    assert framer.stats.undecodable_blocks == 1


def test_nul_bytes_are_replaced_and_counted() -> None:
    """PostgreSQL cannot store a NUL in text: a garbled value must not cost its call."""
    framer = AmiFramer(expect_banner=False)
    wire = b"Event: VarSet\r\nVariable: MIXMONITOR_FILENAME\r\nValue: /rec/a\x00.wav\r\n\r\n"
    clean = b"Event: Hangup\r\nUniqueid: 1.3\r\n\r\n"
    messages = framer.feed(wire + clean)
    assert messages[0]["Value"] == "/rec/a\ufffd.wav"
    assert messages[1]["Uniqueid"] == "1.3"
    assert framer.stats.undecodable_blocks == 1


def test_garbage_is_counted_and_the_next_message_survives() -> None:
    stats = ParseStats()
    wire = (
        b"!!garbage!!\r\n\r\n"
        b"Event: Newexten\r\nno colon here\r\nUniqueid: 1.2\r\n\r\n"
        b"\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 1.3\r\n\r\n"
    )
    messages = list(iter_messages(wire, expect_banner=False, stats=stats))
    assert [m.name for m in messages] == ["Newexten", "Hangup"]
    assert messages[0]["Uniqueid"] == "1.2"
    assert stats.malformed_blocks == 1
    assert stats.malformed_lines == 2


@pytest.mark.parametrize(
    ("block", "headers", "bad_lines"),
    [
        # A key ends at the first colon, even when the value holds ": " too.
        ("Event: VarSet\r\nValue:a: b", (("Event", "VarSet"), ("Value", "a: b")), 0),
        ("Event: VarSet\r\nVa:lue: x", (("Event", "VarSet"), ("Va", "lue: x")), 0),
        # No space after the colon still separates key and value.
        ("Event: VarSet\r\nValue:x", (("Event", "VarSet"), ("Value", "x")), 0),
        # A key with a space or an empty key is no header: dropped and counted.
        ("Event: VarSet\r\nBad Key: x\r\nValue: y", (("Event", "VarSet"), ("Value", "y")), 1),
        ("Event: VarSet\r\n: x\r\nValue: y", (("Event", "VarSet"), ("Value", "y")), 1),
        ("Event: VarSet\r\nValue: y\r\n: x", (("Event", "VarSet"), ("Value", "y")), 1),
    ],
)
def test_odd_lines_are_read_as_the_line_by_line_rules_say(
    block: str, headers: tuple[tuple[str, str], ...], bad_lines: int
) -> None:
    # Well-formed blocks take a faster path; these must not, or they would read differently.
    stats = ParseStats()
    message = parse_block(block, stats)
    assert message is not None and message.headers == headers
    assert stats.malformed_lines == bad_lines


def test_a_block_cut_by_the_end_of_the_stream_is_counted() -> None:
    framer = AmiFramer(expect_banner=False)
    assert framer.feed(b"Event: Hangup\r\nUniqueid: 1.") == []
    framer.close()
    assert framer.stats.truncated_blocks == 1


def test_a_peer_that_never_ends_a_block_cannot_exhaust_memory() -> None:
    framer = AmiFramer(expect_banner=False)
    framer.feed(b"Event: X\r\nKey: " + b"a" * (2 << 20))
    assert framer.stats.malformed_blocks == 1
    assert framer.feed(b"\r\n\r\nEvent: Hangup\r\n\r\n")[-1].name == "Hangup"


def test_render_writes_what_asterisk_writes() -> None:
    wire = render([("Response", "Success"), ("ActionID", "login-1"), ("AccountCode", "")])
    assert wire == b"Response: Success\r\nActionID: login-1\r\nAccountCode: \r\n\r\n"
    message = parse_block(wire.decode()[:-4], ParseStats())
    assert message is not None
    assert message.headers == (
        ("Response", "Success"),
        ("ActionID", "login-1"),
        ("AccountCode", ""),
    )
