from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import pytest
from sqlmodel import select

from casebook.access import Actor
from casebook.db import Database
from casebook.models import AuditEvent, Recording, RecordingKind
from recordings.ingest import RecordingError, ingest_recording, inspect_file

LISTENER = Actor.system("listener")


def write_wav(path: Path, seconds: float = 1.5, rate: int = 8000) -> bytes:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x01" * int(seconds * rate))
    return path.read_bytes()


def test_facts_of_an_asterisk_wav(tmp_path: Path) -> None:
    data = write_wav(tmp_path / "call.wav")
    facts = inspect_file(tmp_path / "call.wav")
    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert (facts.format, facts.sample_rate, facts.channels) == ("wav", 8000, 1)
    assert facts.duration_seconds == pytest.approx(1.5)
    assert facts.size_bytes == len(data)


def test_a_corrupt_wav_keeps_its_hash_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    facts = inspect_file(tmp_path / "bad.wav")
    assert facts.format == "wav-unreadable" and facts.duration_seconds is None


FORMATS = Path(__file__).parents[1] / "data" / "arabic" / "formats"


@pytest.mark.parametrize("name", ["ulaw.wav", "alaw.wav", "gsm.wav"])
def test_telephone_codecs_in_a_wav_are_described_too(name: str) -> None:
    # Two seconds of speech as Asterisk can record it; GSM packs 320 samples in 65 bytes.
    facts = inspect_file(FORMATS / name)
    assert (facts.format, facts.sample_rate, facts.channels) == ("wav", 8000, 1)
    assert facts.duration_seconds == pytest.approx(2.0, abs=0.05)


def test_a_recording_cut_off_counts_the_audio_it_holds(tmp_path: Path) -> None:
    data = write_wav(tmp_path / "full.wav", seconds=2.0)
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # the header still claims 2 s
    facts = inspect_file(tmp_path / "cut.wav")
    assert facts.format == "wav"
    assert facts.duration_seconds == pytest.approx((len(data) // 2 - 44) / 16000)


def test_chunks_before_the_audio_are_skipped_with_their_padding(tmp_path: Path) -> None:
    data = write_wav(tmp_path / "plain.wav")
    odd = b"LIST" + (3).to_bytes(4, "little") + b"abc\x00"  # 3 bytes, padded to 4
    (tmp_path / "tagged.wav").write_bytes(data[:36] + odd + data[36:])
    assert inspect_file(tmp_path / "tagged.wav").duration_seconds == pytest.approx(1.5)


@pytest.mark.parametrize(
    "header",
    [
        b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00",  # no format
        b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(16),  # no audio chunk
        b"RIFF\x00\x00\x00\x00AVI LIST",  # another RIFF type
    ],
)
def test_a_wav_without_format_or_audio_is_unreadable(tmp_path: Path, header: bytes) -> None:
    (tmp_path / "odd.wav").write_bytes(header)
    assert inspect_file(tmp_path / "odd.wav").format == "wav-unreadable"


def test_a_name_no_file_can_have_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a file name"):
        inspect_file(tmp_path / "hotline-1.1\x00.wav")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"missing\.wav: recording not found"):
        inspect_file(tmp_path / "missing.wav")


def test_ingest_is_once_per_path_and_a_missing_file_is_audited(
    db: Database, tmp_path: Path
) -> None:
    write_wav(tmp_path / "call.wav")
    path = str(tmp_path / "call.wav")
    first = db.run(
        lambda s: ingest_recording(s, LISTENER, path, kind=RecordingKind.CALL, root=tmp_path)
    )
    again = db.run(
        lambda s: ingest_recording(s, LISTENER, path, kind=RecordingKind.CALL, root=tmp_path)
    )
    assert first is not None and again is not None
    assert first.id == again.id and first.sha256 is not None
    missing = db.run(
        lambda s: ingest_recording(
            s, LISTENER, str(tmp_path / "gone.wav"), kind=RecordingKind.CALL, root=tmp_path
        )
    )
    assert missing is not None and missing.sha256 is None
    with db.session() as s:
        assert len(s.exec(select(Recording)).all()) == 2
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.missing")).one()
    assert "gone.wav: recording not found" in audit.detail["error"]


def with_data_length(data: bytes, claimed: int) -> bytes:
    """The WAV with its data chunk claiming ``claimed`` bytes, as a crash leaves it."""
    at = data.index(b"data") + 4
    return data[:at] + claimed.to_bytes(4, "little") + data[at + 4 :]


@pytest.mark.parametrize("name", ["pcm", "ulaw.wav", "gsm.wav"])
@pytest.mark.parametrize("claimed", ["zero", "less", "more"])
def test_a_recording_cut_short_by_a_crash_counts_the_audio_it_holds(
    tmp_path: Path, name: str, claimed: str
) -> None:
    # Asterisk writes the data length at close: after a crash the header says 0, or what it
    # held when last updated; a copy cut off claims more than it holds.
    data = (
        write_wav(tmp_path / "full.wav", seconds=2.0)
        if name == "pcm"
        else (FORMATS / name).read_bytes()
    )
    body = data.index(b"data") + 8
    length = {"zero": 0, "less": (len(data) - body) // 3, "more": 10 * len(data)}[claimed]
    (tmp_path / "crashed.wav").write_bytes(with_data_length(data, length))
    facts = inspect_file(tmp_path / "crashed.wav")
    assert facts.format == "wav"
    assert facts.duration_seconds == pytest.approx(2.0, abs=0.05)
