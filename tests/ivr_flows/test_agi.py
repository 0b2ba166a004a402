"""Each measured pyst2 0.5.1 defect, neutralised by HotlineAGI (over a real TCP connection)."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asterisk.agi import AGIAppError, AGIUsageError

from ivr_flows.agi import AsteriskSilent, CallerHungUp, HotlineAGI, UnsafeCommand

ENV = b"agi_network: yes\nagi_request: agi://127.0.0.1/hotline\nagi_uniqueid: 1763800000.7\n\n"


class Peer:
    """The Asterisk end: replies written ahead, commands read back as lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self) -> bytes:
        return self.rfile.readline()


@contextmanager
def agi_pair(timeout: float = 10.0) -> Iterator[tuple[HotlineAGI, Peer]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        asterisk = socket.create_connection(listener.getsockname(), timeout=10)
        served, _ = listener.accept()
    served.settimeout(timeout)
    asterisk.sendall(ENV)
    with served, asterisk, served.makefile("rb") as rfile, served.makefile("wb") as wfile:
        yield HotlineAGI(rfile, wfile, served), Peer(asterisk)


def test_reads_the_fastagi_environment() -> None:
    with agi_pair() as (agi, _):
        assert agi.env["agi_uniqueid"] == "1763800000.7"
        assert agi.env["agi_request"] == "agi://127.0.0.1/hotline"


def test_works_outside_the_main_thread_and_leaves_sighup_alone() -> None:
    before = signal.getsignal(signal.SIGHUP)
    errors: list[BaseException] = []

    def session() -> None:
        try:
            with agi_pair() as (agi, peer):
                peer.send(b"200 result=1\n")
                agi.set_variable("A", "b")
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    worker = threading.Thread(target=session)
    worker.start()
    worker.join(timeout=20)
    assert errors == []
    assert signal.getsignal(signal.SIGHUP) is before


def test_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"200 result=0 endpos=100\n")
        agi.stream_file("hotline/welcome")
    assert capfd.readouterr().err == ""


def test_a_newline_in_a_value_cannot_inject_a_second_command() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"200 result=1\n200 result=1\n")
        agi.set_variable("HOTLINE_NOTE", 'x"\nEXEC System "rm -rf /"\r\n\\')
        agi.set_variable("HOTLINE_CASE", "123")
        expected = b'SET VARIABLE "HOTLINE_NOTE" "x\\" EXEC System \\"rm -rf /\\"  \\\\"\n'
        assert peer.command() == expected
        assert peer.command() == b'SET VARIABLE "HOTLINE_CASE" "123"\n'


def test_a_raw_control_character_is_refused_before_anything_is_sent() -> None:
    with agi_pair() as (agi, peer):
        with pytest.raises(UnsafeCommand):
            agi.stream_file("hotline/welcome\nHANGUP")
        peer.send(b"200 result=1\n")
        agi.noop()
        assert peer.command() == b"NOOP\n"


def test_a_hangup_line_does_not_shift_the_replies() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"HANGUP\n200 result=1 (first)\n200 result=1 (second)\n")
        assert agi.get_variable("ONE") == "first"
        assert agi.hung_up
        assert agi.get_variable("TWO") == "second"


def test_end_of_input_is_a_hang_up() -> None:
    with agi_pair() as (agi, peer):
        peer.sock.shutdown(socket.SHUT_WR)
        with pytest.raises(CallerHungUp):
            agi.get_variable("X")
        assert agi.hung_up


def test_a_dead_channel_is_a_hang_up() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
        with pytest.raises(CallerHungUp):
            agi.stream_file("hotline/welcome")


def test_a_hang_up_result_is_a_hang_up_not_a_variable_value() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"200 result=-1 (hangup)\n")
        with pytest.raises(CallerHungUp):
            agi.get_variable("X")


@pytest.mark.parametrize(
    ("reply", "ended_by", "digit", "endpos"),
    [
        (b"200 result=0 (timeout) endpos=64000\n", "timeout", "", 64000),
        (b"200 result=35 (dtmf) endpos=12000\n", "dtmf", "#", 12000),
        (b"200 result=-1 (hangup) endpos=8000\n", "hangup", "", 8000),
        (b"200 result=-1 endpos=8000\n", "hangup", "", 8000),
        (b"200 result=-1 (writefile)\n", "error", "", 0),
    ],
)
def test_record_file_says_how_it_ended(
    reply: bytes, ended_by: str, digit: str, endpos: int
) -> None:
    with agi_pair() as (agi, peer):
        peer.send(reply)
        outcome = agi.record_file("/rec/message-1.2", "wav", "#", 180000, 0, "beep", 5)
        assert (outcome.ended_by, outcome.digit, outcome.endpos) == (ended_by, digit, endpos)
        assert peer.command() == b'RECORD FILE "/rec/message-1.2" wav "#" 180000 0 beep s=5\n'


def test_record_on_a_dead_channel_is_a_hang_up() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
        with pytest.raises(CallerHungUp):
            agi.record_file("/rec/m", "wav")


def test_a_multi_line_usage_reply_is_read_whole() -> None:
    usage = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        b"520 End of proper usage.\n"
    )
    with agi_pair() as (agi, peer):
        peer.send(usage + b"200 result=1 (after)\n")
        with pytest.raises(AGIUsageError, match="Usage: GET DATA"):
            agi.execute("GET DATA", "x", 1000, "bad")
        assert agi.get_variable("NEXT") == "after"


def test_a_single_line_usage_reply_does_not_swallow_the_next() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"520 Invalid command syntax.  Proper usage not available.\n200 result=1 (ok)\n")
        with pytest.raises(AGIUsageError):
            agi.execute("GET DATA")
        assert agi.get_variable("NEXT") == "ok"


def test_a_usage_reply_cut_short_is_a_hang_up_not_a_endless_loop() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n")
        peer.sock.shutdown(socket.SHUT_WR)
        with pytest.raises(CallerHungUp):
            agi.execute("GET DATA")


def test_a_silent_asterisk_times_out() -> None:
    with agi_pair(timeout=0.2) as (agi, _), pytest.raises(AsteriskSilent):
        agi.get_variable("X")


def test_an_unterminated_environment_is_a_hang_up() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        asterisk = socket.create_connection(listener.getsockname(), timeout=10)
        served, _ = listener.accept()
    with served, asterisk, served.makefile("rb") as rfile, served.makefile("wb") as wfile:
        asterisk.sendall(b"agi_network: yes\n")
        asterisk.shutdown(socket.SHUT_WR)
        with pytest.raises(CallerHungUp):
            HotlineAGI(rfile, wfile)


def test_result_minus_one_on_a_live_channel_is_a_failed_command() -> None:
    with agi_pair() as (agi, peer):
        peer.send(b"200 result=-1 endpos=0\n200 result=6\n")
        with pytest.raises(AGIAppError) as caught:
            agi.stream_file("hotline/missing")
        assert not isinstance(caught.value, CallerHungUp)
        assert peer.command() == b'STREAM FILE hotline/missing "" 0\n'
        assert peer.command() == b"CHANNEL STATUS\n"


@pytest.mark.parametrize("hangup_line", [b"HANGUP\n", b""])
def test_result_minus_one_on_a_dead_channel_is_a_hang_up(hangup_line: bytes) -> None:
    dead = b"511 Command Not Permitted on a dead channel or intercept routine\n"
    with agi_pair() as (agi, peer):
        peer.send(b"200 result=-1\n" + hangup_line + dead)
        with pytest.raises(CallerHungUp):
            agi.say_digits("123456789")
        assert agi.hung_up


def test_a_recording_is_waited_for_as_long_as_it_may_last() -> None:
    # The per-command timeout (0.2 s) bounds Asterisk's silence, not a caller's message (1 s).
    with agi_pair(timeout=0.2) as (agi, peer):
        later = threading.Timer(0.6, peer.send, [b"200 result=0 (timeout) endpos=8000\n"])
        later.start()
        outcome = agi.record_file("/rec/message-1.2", "wav", "#", 1000, 0, "beep", 5)
        later.join()
        assert outcome.ended_by == "timeout"
        with pytest.raises(AsteriskSilent):  # the usual bound is back after it
            agi.get_variable("X")


def test_get_data_is_waited_for_its_own_timeout_too() -> None:
    with agi_pair(timeout=0.2) as (agi, peer):
        later = threading.Timer(0.6, peer.send, [b"200 result= (timeout)\n"])
        later.start()
        assert agi.get_data("hotline/main_menu", 1000, 2) == ""
        later.join()


def test_a_recording_never_answered_still_times_out() -> None:
    with agi_pair(timeout=0.2) as (agi, _), pytest.raises(AsteriskSilent):
        agi.record_file("/rec/message-1.2", "wav", "#", 100, 0, "beep", 5)
