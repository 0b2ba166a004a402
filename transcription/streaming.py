"""Transcription while the caller is still speaking, so the draft is ready at hangup.

Asterisk's Record (the IVR's message) writes the WAV as the call goes and fills in the header's
lengths only when it closes the file. A ``StreamSession`` follows such a file: it reads the
samples as they arrive (whole frames only: the last one may be half written), finds the pauses
(Silero VAD, the one faster-whisper ships, at the pipeline's threshold) and at each new pause
transcribes the window heard since the last commit with the pipeline's own decoding, guards and
numbers (``decode_samples``); a window is committed at the first pause past ``WINDOW_SECONDS``.
When the job for the recording comes, ``finish`` checks the closed file against every byte it
heard; when only silence followed the last pause, the transcript is ready, otherwise only the
end no draft covered is transcribed, alone (the whole window only when no draft was made or the
end is shorter than ``MIN_CHUNK_SECONDS``). Anything it cannot vouch for (a file replaced or
truncated, a header never finalised, a format it does not read) raises ``StreamBroken`` and the
worker transcribes the whole file as before: the stream is a head start, never the only copy of
anything.

Measured on 60 s messages (bench/hangup_to_draft.py, 1 CTranslate2 thread, the machine's load
4-6): Whisper base spells a sentence better with the sentences before it in its window, so the
windows are decoded whole. On the tune half (offline, 6 messages, CER against the typed text):
the whole file 0.529; windows of 20 / 12 / 8 s 0.588 / 0.637 / 0.637; 5 s chunks each decoded
alone 0.631, and 0.794 with the text committed before given as Whisper's prompt (Whisper base
copies the prompt into the draft). Streamed at real time, end of recording -> draft p50 / p95:
held-out half 3.09 / 5.54 s against 13.49 / 18.54 s for the whole file, CER 0.617 against 0.585;
tune half 2.30 / 2.99 s against 10.41 / 12.87 s, CER 0.605 against 0.529 (the gaps come from
messages of digit strings said aloud, which Whisper base babbles; the whole file's Whisper
skipped 37 s of one as silence). The time at the close is waiting for the last window's draft,
started at the last pause: a pass of the encoder (1.2 s on one thread under that load, whatever
the window's length) and about 0.13 s of beam search per second of audio.

``RecordingFollower`` runs the sessions in the worker's process: it watches the recordings
folder for new message files, follows each on one thread, and is the worker's ``transcriber``.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import os
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from transcription.audio import (
    WHISPER_RATE,
    AudioError,
    Samples,
    pcm_to_mono,
    resample,
    settled,
)
from transcription.model import LoadedModel, load
from transcription.pipeline import decode_samples, transcribe, transcribe_batch
from transcription.result import Segment, Timings, TranscriptResult, Word
from transcription.settings import TranscriptionSettings

log = logging.getLogger(__name__)

# A pause is this much silence (Silero's spans are apart where it lasts this long).
PAUSE_SECONDS = 0.25
# Silero's speech spans are widened by this each side (faster-whisper's default is 0.4 s, which
# would swallow the pauses we cut at).
SPEECH_PAD_SECONDS = 0.1
# No window is transcribed shorter than this: Whisper needs some context to spell a sentence.
MIN_CHUNK_SECONDS = 1.0
# A window is committed at the first pause past this length: Whisper reads 30 s at a time, and
# each window costs a pass of its encoder whatever its length.
WINDOW_SECONDS = 20.0
# How often the follower looks for new files and new audio.
POLL_SECONDS = 0.2
# A pause is looked for once this much new audio has arrived (Silero runs over the pending audio).
CHECK_EVERY_SECONDS = 0.4
# A file written to this recently when it appears is a recording in progress.
RECENT_SECONDS = 5.0
# A file that has not grown for this long and that no job asked for is forgotten (a caller who
# said nothing, a message whose job went to another machine); its job transcribes it whole.
FORGET_SECONDS = 600.0


class StreamBroken(Exception):
    """The stream cannot vouch for the whole recording; ``str()`` says why."""


@dataclass(frozen=True)
class WavLayout:
    channels: int
    width: int  # bytes per sample
    rate: int
    data_offset: int  # where the samples start
    data_size: int  # the header's length of the samples: 0 until the file is closed

    @property
    def frame(self) -> int:
        return self.channels * self.width


def wav_layout(head: bytes) -> WavLayout | None:
    """The layout of a PCM WAV from its first bytes; None while the header is still being
    written (torn). Raises ``StreamBroken`` for what is not a PCM WAV."""
    if len(head) < 12:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise StreamBroken("not a RIFF/WAVE file")
    position, fmt = 12, None
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], struct.unpack_from("<I", head, position + 4)[0]
        body = position + 8
        if chunk == b"data":
            if fmt is None:
                raise StreamBroken("the WAV's samples come before its format")
            return WavLayout(*fmt, data_offset=body, data_size=size)
        if chunk == b"fmt ":
            if body + 16 > len(head):
                return None
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, body)
            if tag != 1 or channels < 1 or rate < 1 or bits not in (8, 16, 24, 32):
                raise StreamBroken(f"not plain PCM (format {tag}, {channels} ch, {bits} bit)")
            fmt = (channels, bits // 8, rate)
        position = body + size + size % 2  # chunks are padded to even lengths
    return None


class GrowingWav:
    """The samples of a WAV that is still being written, read as they arrive.

    The header's lengths are ignored while it grows (they say 0 until the file is closed); only
    whole frames are taken, the rest waits for the next read. The file is followed by identity:
    replaced (another inode) or truncated below what was read raises ``StreamBroken``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layout: WavLayout | None = None
        self.heard = bytearray()  # every whole frame read so far, for the check at the end
        self._identity: tuple[int, int] | None = None

    def read(self) -> Samples:
        """The new whole frames since the last read, as mono float32 at the file's rate."""
        if self.layout is None:
            data, _ = self._contents(None)
            self.layout = wav_layout(data)
            if self.layout is None:
                return np.zeros(0, dtype=np.float32)
            return self._take(data[self.layout.data_offset :])
        data, size = self._contents(len(self.heard))
        if size < self.layout.data_offset + len(self.heard):
            raise StreamBroken(f"the file shrank to {size} bytes while it was followed")
        return self._take(data)

    def final_tail(self) -> Samples:
        """The closed file's frames not read yet, once every byte read is found unchanged in it.
        Raises ``StreamBroken`` when the file is not the one followed, or not closed."""
        if self.layout is None:
            raise StreamBroken("the header was never complete")
        data, size = self._contents(None)
        final = wav_layout(data)
        if final is None or final.data_size == 0:
            raise StreamBroken("the header's data length is 0: the file was not closed")
        body = data[final.data_offset : final.data_offset + final.data_size]
        if final.data_offset != self.layout.data_offset or len(body) < final.data_size:
            raise StreamBroken(f"the header says {final.data_size} bytes of samples, {size} in all")
        if body[: len(self.heard)] != self.heard:
            raise StreamBroken("the samples read while the file grew differ from the closed file")
        return self._take(body[len(self.heard) :])

    def _contents(self, skip: int | None) -> tuple[bytes, int]:
        """The whole file (``skip`` None) or its samples after the first ``skip`` bytes, and its
        size. Raises ``StreamBroken`` when it is gone or no longer the file first opened."""
        try:
            with self.path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                identity = (info.st_dev, info.st_ino)
                if self._identity is None:
                    self._identity = identity
                elif identity != self._identity:
                    raise StreamBroken("the file was replaced while it was followed")
                if skip is not None and self.layout is not None:
                    handle.seek(self.layout.data_offset + skip)
                return handle.read(), info.st_size
        except FileNotFoundError:
            raise StreamBroken("the file was removed while it was followed") from None
        except OSError as exc:
            raise StreamBroken(f"cannot read the file ({exc.strerror})") from exc

    def _take(self, data: bytes) -> Samples:
        assert self.layout is not None
        whole = bytes(data[: len(data) - len(data) % self.layout.frame])
        self.heard += whole
        return pcm_to_mono(whole, self.layout.width, self.layout.channels)


def speech_spans(samples: Samples, vad_threshold: float) -> list[tuple[int, int]]:
    """Silero's speech in 16 kHz audio as (start, end) sample indexes, apart where a pause of
    ``PAUSE_SECONDS`` or more separates them."""
    spans = get_speech_timestamps(
        samples,
        VadOptions(
            threshold=vad_threshold,
            min_silence_duration_ms=int(PAUSE_SECONDS * 1000),
            speech_pad_ms=int(SPEECH_PAD_SECONDS * 1000),
        ),
    )
    return [(span["start"], span["end"]) for span in spans]


def latest_pause(spans: list[tuple[int, int]], size: int) -> int | None:
    """The middle of the latest pause between ``spans`` (of 16 kHz audio ``size`` long) that
    leaves at least ``MIN_CHUNK_SECONDS`` before it, counting a pause still going on at the end
    once it has lasted ``PAUSE_SECONDS``; None when there is none yet."""
    least = int(MIN_CHUNK_SECONDS * WHISPER_RATE)
    pause = int(PAUSE_SECONDS * WHISPER_RATE)
    if size < least + pause:
        return None
    if not spans:  # silence so far: cut it off, keeping a pause's worth in case speech begins
        return size - pause
    gaps = [(before[1], after[0]) for before, after in itertools.pairwise(spans)]
    if size - spans[-1][1] >= pause:
        gaps.append((spans[-1][1], size))
    cuts = [(start + end) // 2 for start, end in gaps if (start + end) // 2 >= least]
    return cuts[-1] if cuts else None


def find_cut(samples: Samples, vad_threshold: float) -> int | None:
    """Where to cut the 16 kHz audio heard so far (``latest_pause``), or None."""
    return latest_pause(speech_spans(samples, vad_threshold), samples.size)


@dataclass
class _Heard:
    """What the windows committed so far add up to."""

    segments: list[Segment]
    dropped: list[str]
    speech_seconds: float = 0.0
    decode_seconds: float = 0.0
    transcribe_seconds: float = 0.0  # every decoding, those of drafts overtaken by speech too


@dataclass(frozen=True)
class _Draft:
    """The window up to ``end`` (16 kHz samples of the recording) transcribed."""

    end: int
    segments: list[Segment]
    dropped: list[str]
    speech_seconds: float


@dataclass(frozen=True)
class Closing:
    """Where the time went between ``finish`` being called and the transcript."""

    waited: float  # for the decoding under way when the file was closed
    tail: float  # decoding what the drafts had not covered (0: the last draft was the transcript)
    total: float
    window: float  # seconds of audio in the last window decoded (the draft's or the tail's)


class StreamSession:
    """One recording followed as it grows: ``follow`` often while it is written, ``finish``
    once it is closed. Thread-safe: the follower and the worker may call at the same time.

    The audio since the last commit (the window) is transcribed again at each new pause, as
    one piece as the whole-file path would see it: Whisper decodes a window with the context of
    its earlier sentences, which short chunks lose (measured: +0.10 CER for 5 s chunks). A window is
    committed once it reaches ``WINDOW_SECONDS`` at a pause. At the close, when nothing but
    silence follows the last pause, the last draft is the transcript: no decoding is left; when
    speech follows it, only that end is decoded (the caller waits for it, not the window)."""

    def __init__(self, path: Path, settings: TranscriptionSettings, model: LoadedModel) -> None:
        self.path = path
        self.settings = settings
        self.model = model
        self.reader = GrowingWav(path)
        self.failure: str | None = None
        self.grew_at = time.monotonic()
        self._source = np.zeros(0, dtype=np.float32)  # every sample read, at the file's rate
        # Below, positions are 16 kHz samples of the recording. The recording at 16 kHz, as far
        # as no later sample can change it (the resampler looks a few samples ahead).
        self._audio = np.zeros(0, dtype=np.float32)
        self._start = 0  # where the window begins: everything before it is committed
        self._unchecked = 0  # samples (at the file's rate) arrived since the last look
        self._draft: _Draft | None = None  # the window up to its latest pause, transcribed
        self._heard = _Heard([], [])
        self.windows: list[tuple[int, int]] = []  # the committed windows, 16 kHz sample spans
        self.closing: Closing | None = None  # set by ``finish``
        self._lock = threading.Lock()

    def follow(self) -> None:
        """Read what was written since; at a new pause, transcribe the window up to it."""
        with self._lock:
            if self.failure is not None:
                return
            try:
                new = self.reader.read()
            except StreamBroken as exc:
                self.failure = str(exc)
                log.info("%s: no longer followed: %s", self.path.name, exc)
                return
            if not new.size:
                return
            self.grew_at = time.monotonic()
            self._hear(new, closed=False)
            self._unchecked += new.size
            if self._unchecked < CHECK_EVERY_SECONDS * self._rate():
                return
            self._unchecked = 0
            spans = self._spans()
            cut = latest_pause([(a - self._start, b - self._start) for a, b in spans],
                               self._audio.size - self._start)  # fmt: skip
            if cut is None:
                return
            end = self._start + cut
            draft = self._draft
            if draft is None or any(draft.end < stop <= end for _, stop in spans):
                draft = self._draft = self._transcribe(end)
            if self._ripe(draft):
                self._commit(draft, draft.end)

    def finish(self) -> TranscriptResult:
        """The transcript of the closed recording: the windows committed and the last one.
        Raises ``StreamBroken`` when the closed file is not what was heard."""
        called = time.perf_counter()
        with self._lock:
            locked = time.perf_counter()
            if self.failure is not None:
                raise StreamBroken(self.failure)
            self._hear(self.reader.final_tail(), closed=True)
            draft, end = self._draft, self._audio.size
            tail = 0.0
            if draft is None or any(stop > draft.end for _, stop in self._spans()):
                decoding = time.perf_counter()
                if draft is not None and end - draft.end >= MIN_CHUNK_SECONDS * WHISPER_RATE:
                    # Speech after the last draft: only that tail is decoded now, alone (the
                    # caller's last words lose the window's context; the window is not decoded
                    # again while the caller waits).
                    self._commit(draft, draft.end)
                draft = self._transcribe(end)
                tail = time.perf_counter() - decoding
            self._commit(draft, end)
            self.failure = "finished"  # nothing more to follow
            first, last = self.windows[-1]
            self.closing = Closing(
                locked - called, tail, time.perf_counter() - called, (last - first) / WHISPER_RATE
            )
            return self._result()

    def _ripe(self, draft: _Draft) -> bool:
        """Whether ``draft`` is long enough to commit. A window in which the VAD heard speech
        but Whisper wrote nothing (it skips a window it takes for silence: seen with a 21 s
        window of a tune-half message) grows on and is heard again at the next pause, up to
        twice the length."""
        length = draft.end - self._start
        if length < WINDOW_SECONDS * WHISPER_RATE:
            return False
        heard = bool(draft.segments) or draft.speech_seconds < MIN_CHUNK_SECONDS
        return heard or length >= 2 * WINDOW_SECONDS * WHISPER_RATE

    def _rate(self) -> int:
        assert self.reader.layout is not None
        return self.reader.layout.rate

    def _hear(self, new: Samples, *, closed: bool) -> None:
        """Add samples read; resample what they settle (all of it once the file is closed)."""
        started = time.perf_counter()
        self._source = np.concatenate([self._source, new])
        rate = self._rate()
        more = resample(self._source, rate, WHISPER_RATE, first=self._audio.size)
        if not closed:
            more = more[: settled(self._source.size, rate, WHISPER_RATE) - self._audio.size]
        self._audio = np.concatenate([self._audio, more])
        self._heard.decode_seconds += time.perf_counter() - started

    def _spans(self) -> list[tuple[int, int]]:
        """The speech since the draft's end (the window's start when there is none) and a
        second before it, as positions in the recording."""
        since = max(self._start, (self._draft.end if self._draft else 0) - WHISPER_RATE)
        started = time.perf_counter()
        spans = speech_spans(self._audio[since:], self.settings.vad_threshold)
        self._heard.decode_seconds += time.perf_counter() - started
        return [(since + start, since + end) for start, end in spans]

    def _transcribe(self, end: int) -> _Draft:
        """The window up to ``end``, transcribed."""
        started = time.perf_counter()
        segments, dropped, info = decode_samples(
            self._audio[self._start : end], self.settings, self.model
        )
        self._heard.transcribe_seconds += time.perf_counter() - started
        shift = self._start / WHISPER_RATE
        log.debug(
            "%s: %.1f-%.1f s transcribed in %.2f s",
            self.path.name,
            shift,
            end / WHISPER_RATE,
            time.perf_counter() - started,
        )
        placed = [shifted(segment, shift) for segment in segments]
        reasons = [f"window from {shift:.1f} s, {reason}" for reason in dropped]
        return _Draft(end, placed, reasons, float(info.duration_after_vad))

    def _commit(self, draft: _Draft, through: int) -> None:
        """Keep ``draft`` and start the window at ``through`` (its end, or the end of the
        recording when only silence follows it)."""
        self._heard.segments += draft.segments
        self._heard.dropped += draft.dropped
        self._heard.speech_seconds += draft.speech_seconds
        self.windows.append((self._start, draft.end))
        self._start = through
        self._draft = None

    def _result(self) -> TranscriptResult:
        heard = self._heard
        return TranscriptResult(
            text=" ".join(segment.text for segment in heard.segments),
            language=self.settings.language,
            language_probability=1.0,  # the pipeline forces the language
            duration=self._source.size / self._rate(),
            speech_duration=heard.speech_seconds,
            segments=tuple(heard.segments),
            no_speech=not heard.segments,
            model_name=self.model.resolved.name,
            model_sha256=self.model.resolved.sha256,
            timings=Timings(heard.decode_seconds, 0.0, heard.transcribe_seconds),
            dropped=tuple(heard.dropped),
        )


def shifted(segment: Segment, seconds: float) -> Segment:
    """The segment of a chunk placed in the recording: its times and its words' moved."""
    return replace(
        segment,
        start=segment.start + seconds,
        end=segment.end + seconds,
        words=tuple(
            Word(
                word.start + seconds, word.end + seconds, word.text, word.probability, word.doubtful
            )
            for word in segment.words
        ),
    )


class RecordingFollower:
    """Follows the message recordings as Record writes them, in the worker's process, and is the
    worker's ``transcriber``: a recording followed to its end is finished from its stream, any
    other (or one whose stream broke) is transcribed whole.

    It follows the files in ``folder`` whose names match ``pattern`` and that were written to
    lately (``RECENT_SECONDS``): an older file is a recording from before, which its job
    transcribes whole. The folder is listed only when its modification time says a file came."""

    name = "stream"

    def __init__(
        self,
        folder: Path,
        pattern: str,
        settings: TranscriptionSettings,
        model: LoadedModel | None = None,
    ) -> None:
        self.folder = folder
        self.pattern = pattern
        self.settings = settings
        self._model = model
        self._sessions: dict[Path, StreamSession] = {}
        # Files finished or forgotten, with when: not followed again while still recent.
        self._done: dict[Path, float] = {}
        self._listed_at: int | None = None  # the folder's st_mtime_ns when last listed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stream", daemon=True)
        self.streamed = 0  # jobs finished from their stream
        self.whole = 0  # jobs transcribed whole
        self.last_closing: Closing | None = None  # of the latest job finished from its stream

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def state(self) -> dict[str, Any]:
        with self._lock:
            following = len(self._sessions)
        return {"following": following, "streamed": self.streamed, "whole": self.whole}

    def __call__(self, path: Path) -> TranscriptResult:
        streamed = self._streamed(path)
        if streamed is not None:
            return streamed
        self.whole += 1
        return transcribe(path, self.settings, model=self._model)

    def transcribe_batch(self, paths: Sequence[Path]) -> list[TranscriptResult | AudioError]:
        """The batching worker's entry: each recording finished from its stream where it was
        followed to its end, the others (a burst beyond ``stream_at_once``, a broken stream)
        transcribed together in shared passes (``pipeline.transcribe_batch``)."""
        streamed = [self._streamed(path) for path in paths]
        rest = [path for path, result in zip(paths, streamed, strict=True) if result is None]
        self.whole += len(rest)
        whole = iter(transcribe_batch(rest, self.settings, model=self._model) if rest else [])
        return [next(whole) if result is None else result for result in streamed]

    def _streamed(self, path: Path) -> TranscriptResult | None:
        """The recording's transcript from its stream; None when it was not followed or its
        stream cannot vouch for the closed file."""
        key = path.resolve()
        with self._lock:
            session = self._sessions.pop(key, None)
            self._done[key] = time.monotonic()
        if session is None:
            return None
        try:
            result = session.finish()
        except StreamBroken as exc:
            log.warning("%s: transcribed whole (%s)", path.name, exc)
            return None
        self.streamed += 1
        self.last_closing = session.closing
        if session.closing is not None:
            log.info(
                "%s: draft from the stream %.2f s after its job came (%.2f s waiting for the "
                "decoding under way, %.2f s decoding the end)",
                path.name,
                session.closing.total,
                session.closing.waited,
                session.closing.tail,
            )
        return result

    def follow_once(self) -> None:
        """One round: start following new files, read the growing ones, forget stale ones."""
        for path in self._new_files():
            with self._lock:
                if len(self._sessions) >= self.settings.stream_at_once:
                    # The rest are looked for again next round (from their start, while they
                    # are still being written); those never followed are transcribed whole.
                    self._listed_at = None
                    break
            model = self._model or load(self.settings)
            with self._lock:
                self._sessions[path] = StreamSession(path, self.settings, model)
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.follow()
        now = time.monotonic()
        with self._lock:
            for key, session in list(self._sessions.items()):
                if now - session.grew_at > FORGET_SECONDS:
                    del self._sessions[key]
                    self._done[key] = now
            for key, when in list(self._done.items()):
                if now - when > FORGET_SECONDS:
                    del self._done[key]

    def _new_files(self) -> list[Path]:
        try:
            listed_at = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if listed_at == self._listed_at:
            return []
        self._listed_at = listed_at
        recent = time.time() - RECENT_SECONDS
        new: list[Path] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if not fnmatch.fnmatchcase(entry.name, self.pattern):
                    continue
                key = Path(entry.path).resolve()
                with self._lock:
                    known = key in self._sessions or key in self._done
                try:
                    fresh = entry.stat(follow_symlinks=False).st_mtime > recent
                except FileNotFoundError:
                    continue
                if not known and fresh and entry.is_file(follow_symlinks=False):
                    new.append(key)
        return new

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.follow_once()
            except Exception:
                # A bug here must not stop the worker: its jobs then transcribe whole files.
                log.exception("following recordings failed; trying again")
