"""Transcription while the message is recorded: the growing-file reader (a header still being
written, half a frame, a file replaced, truncated or never closed), the cuts at pauses on real
speech (Silero), the real model streamed against the whole file, and the follower as the worker's
transcriber (streamed when it followed the file to its end, the whole file otherwise)."""

from __future__ import annotations

import os
import struct
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from casebook.db import Database
from casebook.models import DraftState
from hotline.app.config import Settings
from hotline.simulator.audio import OPEN_WAV_HEADER, close_wav, read_pcm
from ivr_flows.engine import MESSAGE_FILES
from tests.transcription.conftest import ARABIC
from tests.transcription.test_pipeline import ScriptedWhisper, scripted, segment
from tests.transcription.test_worker import drafts, drain, queue_message
from transcription import streaming
from transcription.audio import WHISPER_RATE, AudioError, load_audio
from transcription.model import LoadedModel
from transcription.pipeline import decode_samples
from transcription.result import Segment, TranscriptResult
from transcription.settings import TranscriptionSettings
from transcription.streaming import (
    MIN_CHUNK_SECONDS,
    WINDOW_SECONDS,
    GrowingWav,
    RecordingFollower,
    StreamBroken,
    StreamSession,
    find_cut,
    shifted,
    wav_layout,
)
from transcription.worker import TranscriptionWorker

SETTINGS = TranscriptionSettings()
PAUSE = bytes(2 * 8000)  # one second of silence at 8 kHz, 16-bit


def grow(path: Path, data: bytes) -> None:
    with path.open("ab") as wav:
        wav.write(data)


def followed(path: Path, *values: int) -> GrowingWav:
    """A reader that has read ``values`` from a message being recorded at ``path``."""
    grow(path, OPEN_WAV_HEADER + samples_of(*values))
    reader = GrowingWav(path)
    reader.read()
    return reader


def samples_of(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


# --- the growing file -----------------------------------------------------------------------


def test_a_torn_header_waits_and_half_a_frame_waits_for_its_other_half(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    grow(path, OPEN_WAV_HEADER[:20])  # Record has written part of the header
    reader = GrowingWav(path)
    assert reader.read().size == 0 and reader.layout is None
    grow(path, OPEN_WAV_HEADER[20:] + samples_of(16384)[:1])
    assert reader.read().size == 0  # the header, and half a sample
    assert reader.layout is not None and reader.layout.rate == 8000
    grow(path, samples_of(16384)[1:] + samples_of(-16384, 0)[:3])
    assert reader.read().tolist() == [0.5, -0.5]  # the header still says 0 bytes of data
    grow(path, samples_of(0)[1:])
    assert reader.read().tolist() == [0.0]
    close_wav(path)
    assert reader.final_tail().size == 0
    assert bytes(reader.heard) == samples_of(16384, -16384, 0)


def test_the_tail_after_the_last_read_comes_from_the_closed_file(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    grow(path, OPEN_WAV_HEADER + samples_of(100, 200))
    reader = GrowingWav(path)
    assert reader.read().size == 2
    grow(path, samples_of(300, 400, 500))
    close_wav(path)
    assert (reader.final_tail() * 32768).round().tolist() == [300, 400, 500]


def test_a_file_closed_by_python_wave_is_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    with wave.open(str(path), "wb") as wav:  # another writer: a LIST chunk-free, patched header
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples_of(1000, 3000, -1000, -3000))
    reader = GrowingWav(path)
    assert (reader.read() * 32768).round().tolist() == [2000, -2000]  # the channels averaged
    assert reader.final_tail().size == 0


def test_a_file_never_closed_is_not_vouched_for(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    reader = followed(path, 1, 2, 3)
    with pytest.raises(StreamBroken, match="not closed"):
        reader.final_tail()  # Asterisk died: the header says 0 bytes; the whole-file path decides


def test_a_replaced_file_breaks_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    reader = followed(path, 1, 2)
    other = tmp_path / "other.wav"
    other.write_bytes(OPEN_WAV_HEADER + samples_of(1, 2, 3, 4))
    other.replace(path)
    with pytest.raises(StreamBroken, match="replaced"):
        reader.read()


def test_a_truncated_file_breaks_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    reader = followed(path, 1, 2, 3, 4)
    with path.open("r+b") as wav:
        wav.truncate(len(OPEN_WAV_HEADER) + 2)
    with pytest.raises(StreamBroken, match="shrank"):
        reader.read()


def test_samples_rewritten_in_place_are_caught_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    reader = followed(path, 1, 2, 3, 4)
    with path.open("r+b") as wav:  # same file, same size, other samples
        wav.seek(len(OPEN_WAV_HEADER))
        wav.write(samples_of(9))
    close_wav(path)
    with pytest.raises(StreamBroken, match="differ"):
        reader.final_tail()


def test_a_removed_file_breaks_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    reader = followed(path, 1, 2)
    path.unlink()
    with pytest.raises(StreamBroken, match="removed"):
        reader.read()


def test_what_is_not_a_pcm_wav_is_not_followed() -> None:
    with pytest.raises(StreamBroken, match="RIFF"):
        wav_layout(b"ID3\x03" + bytes(40))
    mulaw = OPEN_WAV_HEADER[:20] + struct.pack("<H", 7) + OPEN_WAV_HEADER[22:]
    with pytest.raises(StreamBroken, match="format 7"):
        wav_layout(mulaw)


def test_chunks_before_the_samples_are_skipped() -> None:
    fmt_end = len(OPEN_WAV_HEADER) - 8
    listed = OPEN_WAV_HEADER[:fmt_end] + b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    layout = wav_layout(listed + OPEN_WAV_HEADER[fmt_end:])
    assert layout is not None and layout.data_offset == len(OPEN_WAV_HEADER) + 12
    assert wav_layout(listed) is None  # the data chunk not written yet


# --- cuts at pauses (Silero on real speech) --------------------------------------------------


def speech(*clips: str) -> np.ndarray:
    """The clips with a second of silence after each, at 16 kHz."""
    parts = [load_audio(ARABIC / f"{clip}.wav").samples for clip in clips]
    silence = np.zeros(WHISPER_RATE, dtype=np.float32)
    return np.concatenate([part for clip in parts for part in (clip, silence)])


def test_the_cut_falls_in_the_pause_between_two_sentences() -> None:
    first = load_audio(ARABIC / "ar03.wav").samples.size
    audio = speech("ar03", "ar05")[: first + WHISPER_RATE + 2 * WHISPER_RATE]  # 2 s into ar05
    cut = find_cut(audio, SETTINGS.vad_threshold)
    assert cut is not None and first < cut < first + WHISPER_RATE


def test_a_pause_still_going_on_at_the_end_is_a_cut() -> None:
    first = load_audio(ARABIC / "ar03.wav").samples.size
    audio = speech("ar03")  # the sentence and a second of silence, nothing after it yet
    cut = find_cut(audio, SETTINGS.vad_threshold)
    assert cut is not None and first < cut < audio.size


def test_no_cut_before_the_shortest_chunk() -> None:
    audio = speech("ar03")[: int(MIN_CHUNK_SECONDS * WHISPER_RATE)]
    assert find_cut(audio, SETTINGS.vad_threshold) is None


def test_silence_is_cut_off_keeping_a_pause_in_case_speech_starts() -> None:
    silence = np.zeros(5 * WHISPER_RATE, dtype=np.float32)
    cut = find_cut(silence, SETTINGS.vad_threshold)
    assert cut is not None and 4 * WHISPER_RATE < cut < silence.size


# --- sessions and the follower ---------------------------------------------------------------


def record_in_steps(
    path: Path, pcm: bytes, follow: Callable[[], None], step_seconds: float = 0.5
) -> None:
    """Write ``pcm`` as Record does (header first, lengths 0), calling ``follow()`` after each
    step, then close the file."""
    grow(path, OPEN_WAV_HEADER)
    step = int(step_seconds * 8000) * 2
    for start in range(0, len(pcm), step):
        grow(path, pcm[start : start + step])
        follow()
    close_wav(path)


def sentences(*clips: str) -> bytes:
    """The clips, a second of silence after each."""
    return b"".join(read_pcm(ARABIC / f"{clip}.wav") + PAUSE for clip in clips)


def seconds(*clips: str) -> float:
    return sum(load_audio(ARABIC / f"{clip}.wav").duration + 1.0 for clip in clips)


def decodings(model: LoadedModel) -> list[int]:
    """How many 16 kHz samples each of the scripted model's decodings was given."""
    whisper = model.whisper
    assert isinstance(whisper, ScriptedWhisper)
    return [call["samples"] for call in whisper.calls]


def test_the_window_is_transcribed_again_at_each_pause_and_ready_at_the_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "message-1.wav"
    model = scripted([segment("الخط مقطوع", start=0.5)])
    session = StreamSession(path, SETTINGS, model)
    record_in_steps(path, sentences("ar03", "ar05"), session.follow)
    while_recorded = decodings(model)
    result = session.finish()
    assert decodings(model) == while_recorded  # only silence after the last pause: ready
    assert session.closing is not None and session.closing.tail == 0
    # Each decoding is the window from its start, as the whole-file path reads it, and the last
    # one holds both sentences.
    assert while_recorded == sorted(while_recorded) and len(while_recorded) >= 2
    assert while_recorded[-1] > seconds("ar03") * WHISPER_RATE
    assert [s.start for s in result.segments] == [0.5]
    assert result.text == "الخط مقطوع"
    assert result.duration == pytest.approx(seconds("ar03", "ar05"))


def test_speech_after_the_last_draft_is_transcribed_alone_at_the_close(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    model = scripted([segment("الخط مقطوع")])
    session = StreamSession(path, SETTINGS, model)
    cut_off = int((seconds("ar03") + 3.0) * 8000) * 2  # the caller hangs up mid-sentence
    record_in_steps(path, sentences("ar03", "ar05")[:cut_off], session.follow)
    while_recorded = len(decodings(model))
    result = session.finish()
    # Only the end the drafts did not cover is decoded while the job waits, not the window.
    assert len(decodings(model)) == while_recorded + 1
    (_, drafted), (tail_start, tail_end) = session.windows
    assert (tail_start, tail_end) == (drafted, cut_off)  # 8 kHz bytes / 2 * 2: 16 kHz samples
    assert decodings(model)[-1] == cut_off - drafted
    assert seconds("ar03") / 2 < drafted / WHISPER_RATE < seconds("ar03")  # before ar05
    assert [s.start for s in result.segments] == [0.0, drafted / WHISPER_RATE]
    assert session.closing is not None and session.closing.tail > 0


def test_speech_without_a_pause_is_one_window_transcribed_at_the_close(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    model = scripted([segment("الخط مقطوع")])
    session = StreamSession(path, SETTINGS, model)
    spoken = read_pcm(ARABIC / "ar03.wav")[: 3 * 16000]  # 3 s, no pause yet
    record_in_steps(path, spoken, session.follow)
    assert decodings(model) == []
    session.finish()
    assert decodings(model) == [len(spoken)] and session.windows == [(0, len(spoken))]


def test_a_long_message_is_committed_in_windows_placed_in_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "message-1.wav"
    model = scripted([segment("الخط مقطوع", start=0.5)])
    session = StreamSession(path, SETTINGS, model)
    record_in_steps(path, sentences("ar03", "ar05", "ar01", "ar02"), session.follow)
    result = session.finish()
    first, second = (s.start - 0.5 for s in result.segments)
    assert first == 0.0
    # Committed at the first pause past WINDOW_SECONDS, before the fourth sentence.
    assert WINDOW_SECONDS <= second <= seconds("ar03", "ar05", "ar01")
    assert result.segments[1].words[0].start == result.segments[1].start
    assert result.duration == pytest.approx(seconds("ar03", "ar05", "ar01", "ar02"))
    with pytest.raises(StreamBroken):
        StreamSession(tmp_path / "missing.wav", SETTINGS, model).finish()


@pytest.mark.parametrize(("speech", "windows"), [(3.0, 1), (0.0, 2)])
def test_a_window_whisper_wrote_nothing_for_is_heard_again_unless_it_had_no_speech(
    tmp_path: Path, speech: float, windows: int
) -> None:
    """Whisper skips a window it takes for silence; when its VAD heard speech there (3 s), the
    window is not committed empty but grows and is heard again (up to twice the length)."""
    path = tmp_path / "message-1.wav"
    model = scripted([], speech)
    session = StreamSession(path, SETTINGS, model)
    clips = ("ar03", "ar05", "ar01", "ar02")
    assert WINDOW_SECONDS < seconds(*clips) < 2 * WINDOW_SECONDS
    record_in_steps(path, sentences(*clips), session.follow)
    session.finish()
    assert len(session.windows) == windows and session.windows[0][0] == 0
    assert max(decodings(model)) > WINDOW_SECONDS * WHISPER_RATE


def test_the_follower_streams_new_messages_and_transcribes_the_rest_whole(tmp_path: Path) -> None:
    old = tmp_path / "message-old.wav"  # from before, not written to lately
    old.write_bytes(b"")
    os.utime(old, (old.stat().st_atime - 3600, old.stat().st_mtime - 3600))
    model = scripted([segment("الخط مقطوع")])
    follower = RecordingFollower(tmp_path, "message-*.wav", SETTINGS, model)
    streamed, replaced = tmp_path / "message-1.wav", tmp_path / "message-2.wav"
    grow(replaced, OPEN_WAV_HEADER)
    record_in_steps(streamed, sentences("ar03", "ar05"), follower.follow_once)
    assert follower.state()["following"] == 2  # not the old file
    while_recorded = len(decodings(model))
    assert while_recorded >= 2
    assert follower(streamed).text == "الخط مقطوع"
    assert (follower.streamed, follower.whole) == (1, 0)
    assert len(decodings(model)) == while_recorded  # the draft was ready at the close
    # A message replaced under the stream: its job transcribes the whole file as today.
    follower.follow_once()
    (tmp_path / "other.wav").write_bytes((ARABIC / "ar03.wav").read_bytes())
    (tmp_path / "other.wav").replace(replaced)
    follower.follow_once()
    assert follower(replaced).text == "الخط مقطوع"
    assert (follower.streamed, follower.whole) == (1, 1)
    assert decodings(model)[-1] == load_audio(ARABIC / "ar03.wav").samples.size
    assert follower.state()["following"] == 0
    # Taken once: the same file is not followed again however recent it is.
    follower.follow_once()
    assert follower.state()["following"] == 0


def test_no_more_messages_are_followed_at_once_than_configured(tmp_path: Path) -> None:
    one_at_a_time = TranscriptionSettings(stream_at_once=1)
    follower = RecordingFollower(
        tmp_path, "message-*.wav", one_at_a_time, scripted([segment("الخط مقطوع")])
    )
    first, second = tmp_path / "message-1.wav", tmp_path / "message-2.wav"
    grow(first, OPEN_WAV_HEADER + bytes(800))
    follower.follow_once()
    grow(second, OPEN_WAV_HEADER + bytes(800))
    follower.follow_once()
    follower.follow_once()
    assert follower.state()["following"] == 1
    close_wav(first)
    follower(first)
    assert (follower.streamed, follower.whole) == (1, 0)
    follower.follow_once()  # the second, still recent, is followed now (from its start)
    assert follower.state()["following"] == 1
    close_wav(second)
    follower(second)
    assert (follower.streamed, follower.whole) == (2, 0)


def test_as_the_batching_workers_transcriber_only_what_was_not_streamed_is_batched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring the server uses (components.transcription_components): a batch of jobs, the
    followed ones finished from their streams, the rest handed on together, each in its place."""
    model = scripted([segment("الخط مقطوع")])
    follower = RecordingFollower(tmp_path, "message-*.wav", SETTINGS, model)
    batches: list[list[Path]] = []

    def batch(
        paths: Sequence[Path], settings: TranscriptionSettings, *, model: LoadedModel | None
    ) -> list[TranscriptResult | AudioError]:
        batches.append(list(paths))
        return [AudioError(path, "not a WAV") for path in paths]

    monkeypatch.setattr(streaming, "transcribe_batch", batch)
    first, second = tmp_path / "message-1.wav", tmp_path / "message-2.wav"
    record_in_steps(first, sentences("ar03"), follower.follow_once)
    record_in_steps(second, sentences("ar05"), follower.follow_once)
    unfollowed = tmp_path / "message-3.wav"
    unfollowed.write_bytes((ARABIC / "ar05.wav").read_bytes())
    results = follower.transcribe_batch([first, unfollowed, second])
    assert batches == [[unfollowed]]
    assert [type(result) for result in results] == [TranscriptResult, AudioError, TranscriptResult]
    assert (follower.streamed, follower.whole) == (2, 1)
    # Every job of a batch streamed: nothing is handed on.
    fourth = tmp_path / "message-4.wav"
    record_in_steps(fourth, sentences("ar03"), follower.follow_once)
    (result,) = follower.transcribe_batch([fourth])
    assert isinstance(result, TranscriptResult) and result.text == "الخط مقطوع"
    assert batches == [[unfollowed]]


def test_the_worker_takes_the_streamed_draft_and_the_whole_file_when_the_stream_broke(
    db: Database, settings: Settings
) -> None:
    root = settings.recordings.root
    root.mkdir(parents=True, exist_ok=True)
    model = scripted([segment("الخط مقطوع")])
    follower = RecordingFollower(root, MESSAGE_FILES, settings.transcription, model)
    streamed, broken = root / "message-u-streamed.wav", root / "message-u-broken.wav"
    record_in_steps(streamed, sentences("ar03", "ar05"), follower.follow_once)
    grow(broken, OPEN_WAV_HEADER + read_pcm(ARABIC / "ar05.wav")[:8000])
    follower.follow_once()
    # Record's file replaced by another (a restore, a slip): the stream vouches for nothing.
    (root / "other.wav").write_bytes((ARABIC / "ar05.wav").read_bytes())
    (root / "other.wav").replace(broken)
    queue_message(db, settings, streamed, "u-streamed")
    queue_message(db, settings, broken, "u-broken")
    while_recorded = len(decodings(model))
    worker = TranscriptionWorker(db, settings, idle_seconds=0.05, transcriber=follower)
    drain(worker, db, 2)
    assert (worker.stats.done, follower.streamed, follower.whole) == (2, 1, 1)
    # One decoding at the jobs, the broken one's whole file: the streamed draft was ready.
    assert len(decodings(model)) == while_recorded + 1
    assert decodings(model)[-1] == load_audio(ARABIC / "ar05.wav").samples.size
    states = drafts(db)
    assert states["u-streamed"] == (DraftState.READY, "الخط مقطوع")
    assert states["u-broken"] == (DraftState.READY, "الخط مقطوع")


@pytest.mark.slow
def test_the_real_model_streamed_decodes_each_window_as_the_pipeline_decodes_its_samples(
    tmp_path: Path, real_settings: TranscriptionSettings, real_model: LoadedModel
) -> None:
    """A message that ends while the caller speaks: the first sentence is drafted during the
    call, the rest decoded alone at the close, each from the same 16 kHz samples the whole-file
    path decodes (read as the file grew, resampled piece by piece), with the pipeline's one
    rule for guards and numbers, and placed in the recording. (How much the cut costs against
    the whole file over many messages is bench/hangup_to_draft.py's CER.)"""
    path = tmp_path / "message-1.wav"
    session = StreamSession(path, real_settings, real_model)
    cut_off = int((seconds("ar03") + 3.0) * 8000) * 2
    record_in_steps(path, sentences("ar03", "ar05")[:cut_off], session.follow, step_seconds=0.3)
    streamed = session.finish()
    recording = load_audio(path)
    audio = recording.samples
    assert len(session.windows) == 2 and session.windows[-1][1] == audio.size
    expected: list[Segment] = []
    for start, end in session.windows:
        segments, _, _ = decode_samples(audio[start:end], real_settings, real_model)
        assert segments, "each window has speech"
        expected += [shifted(segment, start / WHISPER_RATE) for segment in segments]
    assert streamed.segments == tuple(expected)
    assert streamed.text == " ".join(segment.text for segment in expected)
    assert streamed.segments[-1].start >= session.windows[-1][0] / WHISPER_RATE
    assert streamed.duration == recording.duration
