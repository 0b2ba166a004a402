"""What one transcription produces: everything a Transcript row and ``--json`` need."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from transcription.numbers import SpokenNumber


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float
    doubtful: bool  # probability below transcription.doubtful_word_probability


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    doubtful: bool  # avg_logprob below transcription.doubtful_log_prob
    words: tuple[Word, ...] = ()  # empty when word timestamps are off
    # The spoken numbers the text and words now carry as digits, with the words Whisper wrote.
    numbers: tuple[SpokenNumber, ...] = ()


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds spent on each step of one transcription."""

    decode: float  # reading and resampling the audio
    model: float  # locating/loading the model (0 once the process has it)
    transcribe: float  # VAD + Whisper + guards

    @property
    def total(self) -> float:
        return self.decode + self.model + self.transcribe


@dataclass(frozen=True)
class TranscriptResult:
    # The draft as displayed: segments joined, guards applied, spoken numbers as digits (the words
    # said are in each segment's numbers), not normalised.
    text: str
    language: str
    language_probability: float  # 1.0 when the language is forced (the default)
    duration: float  # seconds of audio in the recording
    speech_duration: float  # seconds the VAD kept as speech
    segments: tuple[Segment, ...]
    no_speech: bool  # nothing was said (or all of it was dropped as invented): empty draft
    model_name: str
    model_sha256: str
    timings: Timings
    # Why text was removed, for the log and the agent ("segment 2: stock phrase ...").
    dropped: tuple[str, ...] = field(default=())

    @property
    def processing_seconds(self) -> float:
        return self.timings.total

    @property
    def real_time_factor(self) -> float:
        return self.timings.total / self.duration if self.duration else 0.0

    @property
    def avg_logprob(self) -> float | None:
        """Duration-weighted mean over the kept segments (None when there are none)."""
        weights = [max(seg.end - seg.start, 0.01) for seg in self.segments]
        if not weights:
            return None
        total = sum(w * seg.avg_logprob for w, seg in zip(weights, self.segments, strict=True))
        return total / sum(weights)

    @property
    def numbers(self) -> tuple[SpokenNumber, ...]:
        """Every spoken number the draft shows as digits, in order, with the words said."""
        return tuple(number for segment in self.segments for number in segment.numbers)

    @property
    def no_speech_prob(self) -> float | None:
        """The highest no-speech probability among the kept segments (None when none)."""
        return max((seg.no_speech_prob for seg in self.segments), default=None)

    def marked_words(self) -> list[tuple[str, bool]]:
        """The text as (word, doubtful) pairs: Whisper's words with their marks, or the plain
        text unmarked when word timings are off."""
        words = [(w.text.strip(), w.doubtful) for s in self.segments for w in s.words]
        return words or [(word, False) for word in self.text.split()]

    def segment_dicts(self) -> list[dict[str, Any]]:
        """The segments as JSON-ready dicts (what a Transcript row's ``segments`` column holds)."""
        return [_rounded(asdict(segment)) for segment in self.segments]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``hotline transcribe FILE --json``."""
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "duration": round(self.duration, 3),
            "speech_duration": round(self.speech_duration, 3),
            "no_speech": self.no_speech,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "segments": self.segment_dicts(),
            "numbers": [asdict(number) for number in self.numbers],
            "dropped": list(self.dropped),
            "timings": {
                "decode": round(self.timings.decode, 3),
                "model": round(self.timings.model, 3),
                "transcribe": round(self.timings.transcribe, 3),
                "total": round(self.timings.total, 3),
            },
        }


def _rounded(value: Any) -> Any:
    # Millisecond times and 4-digit scores: what an agent or a diff can read.
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value
