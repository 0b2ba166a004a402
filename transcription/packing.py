"""Several short recordings heard in one Whisper window.

Whisper's encoder always hears 30 s; a complaint message has 5-10 s of speech, so most of the
encoder's work on one message is spent on padding, and on CPU the encoder is most of the cost
(batching windows side by side saves nothing there: a batch of 8 windows costs 8 windows). So
the speech the VAD finds in several recordings is laid end to end in one window, silence
between recordings, decoded once with the pipeline's options (timestamps on), and each of
Whisper's segments is handed back to the recording it was said in by its timestamps. The windows
themselves are decoded ``batch_size`` at a time by faster-whisper's batched pass.

A complaint's words must never land in another caller's draft, nor be lost: a segment that
spans the silence between two recordings, or a recording that got no segment back, makes the
recordings concerned be heard again in windows of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from transcription.audio import WHISPER_RATE, Samples

if TYPE_CHECKING:
    from transcription.pipeline import WhisperOptions

# Whisper hears at most this much at once.
WINDOW_SECONDS = 30.0
# Silence between two recordings in a window: longer than a pause inside a sentence, so Whisper
# ends its segment there and its timestamps fall clearly on one side.
GAP_SECONDS = 1.0


class Heard(NamedTuple):
    """What Whisper made of one recording, before the guards."""

    segments: list[Any]  # faster-whisper's Segment objects, times in the recording
    language: str
    language_probability: float
    speech_duration: float  # seconds the VAD kept


@dataclass(frozen=True)
class Piece:
    """One stretch of a recording's speech (a VAD chunk, at most a window long)."""

    recording: int  # its index in the batch
    samples: Samples
    speech_offset: float  # where it starts on the recording's speech-only time line

    @property
    def seconds(self) -> float:
        return len(self.samples) / WHISPER_RATE


@dataclass
class Window:
    """Pieces laid end to end, each with its start time in the window."""

    pieces: list[tuple[float, Piece]] = field(default_factory=list)
    length: float = 0.0

    def fits(self, piece: Piece) -> bool:
        return not self.pieces or self.length + GAP_SECONDS + piece.seconds <= WINDOW_SECONDS

    def add(self, piece: Piece) -> None:
        start = self.length + GAP_SECONDS if self.pieces else 0.0
        self.pieces.append((start, piece))
        self.length = start + piece.seconds

    def samples(self) -> Samples:
        gap = np.zeros(round(GAP_SECONDS * WHISPER_RATE), dtype=np.float32)
        parts: list[Samples] = []
        for _, piece in self.pieces:
            parts.extend([gap, piece.samples] if parts else [piece.samples])
        return np.concatenate(parts)

    def owner(self, start: float, end: float) -> tuple[float, Piece] | None:
        """The piece that the stretch ``start``-``end`` (window time) lies in, a gap's near
        half counted with it; None when the stretch crosses the middle of a gap."""
        for begins, piece in self.pieces:
            if (
                begins - GAP_SECONDS / 2 <= start
                and end <= begins + piece.seconds + GAP_SECONDS / 2
            ):
                return begins, piece
        return None


def pack(pieces: Sequence[Piece]) -> list[Window]:
    """The pieces in order, as few windows as keep that order."""
    windows: list[Window] = []
    for piece in pieces:
        if not windows or not windows[-1].fits(piece):
            windows.append(Window())
        windows[-1].add(piece)
    return windows


def pack_alone(pieces: Sequence[Piece]) -> list[Window]:
    """The pieces in order, no window shared by two recordings."""
    recordings = dict.fromkeys(piece.recording for piece in pieces)
    return [
        window
        for recording in recordings
        for window in pack([piece for piece in pieces if piece.recording == recording])
    ]


class _Decoder:
    """One batch's model, tokenizer and options, decoding windows ``batch_size`` at a time."""

    def __init__(self, whisper: Any, options: WhisperOptions, batch_size: int) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import BatchedInferencePipeline

        from transcription.pipeline import batched_options

        self.whisper = whisper
        self.temperature = options.temperature
        self.batch_size = batch_size
        self.tokenizer = Tokenizer(
            whisper.hf_tokenizer,
            whisper.model.is_multilingual,
            task="transcribe",
            language=options.language,
        )
        self.options = batched_options(options, self.tokenizer)
        self.pipeline = BatchedInferencePipeline(whisper)

    def segments(self, windows: Sequence[Window]) -> dict[int, list[Any] | None]:
        """Each recording's segments on its speech time line; None for a recording whose
        segments could not be told apart from its neighbours' (or that got none back)."""
        from faster_whisper.audio import pad_or_trim

        found: dict[int, list[Any] | None] = {}
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            features = np.stack(
                [pad_or_trim(self.whisper.feature_extractor(w.samples())[..., :-1]) for w in batch]
            )
            metadata = [{"offset": 0.0, "duration": window.length} for window in batch]
            self.pipeline.last_speech_timestamp = 0.0  # word timings start afresh in each pass
            outputs = self.pipeline.forward(features, self.tokenizer, metadata, self.options)
            for window, parts in zip(batch, outputs, strict=True):
                self._split(window, parts, found)
        return found

    def _split(self, window: Window, parts: list[dict[str, Any]], found: dict[int, Any]) -> None:
        heard: dict[int, list[Any]] = {piece.recording: [] for _, piece in window.pieces}
        unsure: set[int] = set()
        for part in parts:
            owner = window.owner(part["start"], part["end"])
            if owner is None:  # across a gap: whose words are whose is not known
                unsure |= set(heard)
                break
            begins, piece = owner
            heard[piece.recording].append(self._segment(part, begins, piece))
        unsure |= {recording for recording, segments in heard.items() if not segments}
        if len(heard) == 1:  # nobody else's words can be in it: Whisper's answer stands
            unsure.clear()
        for recording, segments in heard.items():
            if recording in unsure or found.get(recording, []) is None:
                found[recording] = None
            else:
                found.setdefault(recording, []).extend(segments)

    def _segment(self, part: dict[str, Any], begins: float, piece: Piece) -> Any:
        """A window's segment on its piece's recording's speech time line."""
        from faster_whisper.transcribe import Segment, Word

        def place(moment: float) -> float:
            # Timings that stray into the gap's near half are the piece's edge.
            return min(max(moment - begins, 0.0), piece.seconds) + piece.speech_offset

        words = part.get("words")
        return Segment(
            id=0,
            seek=0,
            start=place(part["start"]),
            end=place(part["end"]),
            text=part["text"],
            tokens=part["tokens"],
            avg_logprob=part["avg_logprob"],
            compression_ratio=part["compression_ratio"],
            no_speech_prob=part["no_speech_prob"],
            words=None
            if words is None
            else [
                Word(
                    start=place(word["start"]),
                    end=place(word["end"]),
                    word=word["word"],
                    probability=word["probability"],
                )
                for word in words
            ],
            temperature=self.temperature,
        )


def decode_packed(
    recordings: Sequence[Samples], whisper: Any, options: WhisperOptions, batch_size: int
) -> list[Heard]:
    """What Whisper hears in each recording, the recordings' speech packed into shared windows
    decoded ``batch_size`` windows at a time (those that could not be told apart, again alone)."""
    from faster_whisper.transcribe import restore_speech_timestamps
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    vad = VadOptions(threshold=options.vad_threshold, max_speech_duration_s=WINDOW_SECONDS)
    speech: list[list[dict[str, int]]] = []
    pieces: list[Piece] = []
    for index, samples in enumerate(recordings):
        spans = get_speech_timestamps(samples, vad)
        speech.append(spans)
        if spans:
            chunks, metadata = collect_chunks(samples, spans, max_duration=WINDOW_SECONDS)
            pieces.extend(
                Piece(index, chunk, float(meta["offset"]))
                for chunk, meta in zip(chunks, metadata, strict=True)
            )
    decoder = _Decoder(whisper, options, batch_size)
    found = decoder.segments(pack(pieces))
    again = {recording for recording, segments in found.items() if segments is None}
    found |= decoder.segments(pack_alone([piece for piece in pieces if piece.recording in again]))
    return [
        Heard(
            list(restore_speech_timestamps(found.get(index) or [], spans, WHISPER_RATE)),
            options.language,
            1.0,  # the language is forced
            sum(span["end"] - span["start"] for span in spans) / WHISPER_RATE,
        )
        for index, spans in enumerate(speech)
    ]
