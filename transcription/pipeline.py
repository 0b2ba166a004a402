"""One call, one recording, one draft: ``transcribe(path)`` (faster-whisper's shape, smaller).

Tuned on the telephone test set (tests/data/arabic; bench/transcribe.py measures it). On 8 kHz
Arabic, Whisper's temperature fallback fires on most utterances, which made bare faster-whisper
slower than real time (RTF 1.2) and no more accurate (CER 0.64); here decoding is beam search at
temperature 0 with ``no_repeat_ngram_size=3`` to stop the loops the fallback was there to break
(RTF 0.3-0.4, CER 0.435 on the same files). The language is forced (auto-detect answered
French, Hebrew or Latin on some clips). VAD skips silence, music and line noise before Whisper can
invent text for them; its threshold is 0.25 because 0.5 dropped a third of the narrow-band speech
in an earlier measurement (on this set the two score the same). Tried and not
adopted (no gain or worse on the set): beam 3, repetition_penalty 1.1, BatchedInferencePipeline
(one VAD chunk per short clip, CER 0.50), conditioning on previous text. The guards in
``guards`` then remove what Whisper still invents, and ``numbers`` writes the spoken numbers as
digits (the words said kept beside them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from transcription.audio import Audio, AudioError, Samples, load_audio
from transcription.guards import (
    STOCK_PHRASES,
    allowed_latin_words,
    clean_words,
    compression_ratio,
)
from transcription.model import LoadedModel, load
from transcription.numbers import find_numbers, replace_spans
from transcription.packing import Heard, decode_packed
from transcription.result import Segment, Timings, TranscriptResult, Word
from transcription.settings import TranscriptionSettings

# A ban on repeating any 3 tokens: Whisper's loops repeat longer spans than Arabic speech does.
NO_REPEAT_NGRAM_SIZE = 3


@dataclass(frozen=True)
class WhisperOptions:
    """The faster-whisper ``transcribe()`` arguments the pipeline passes, typed. Our own rather
    than faster-whisper's ``TranscriptionOptions``: that one has no language, VAD or single
    temperature (they are separate ``transcribe()`` arguments) and makes all 26 of its fields
    required. An experiment changes one field: ``replace(whisper_options(s), beam_size=1)``."""

    language: str
    beam_size: int
    initial_prompt: str | None
    hotwords: str | None
    vad_threshold: float
    word_timestamps: bool
    no_speech_threshold: float | None
    log_prob_threshold: float | None
    compression_ratio_threshold: float | None
    temperature: float = 0.0
    no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE
    # A loop in one 30 s window must not be fed as the prompt of the next.
    condition_on_previous_text: bool = False
    vad_filter: bool = True

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``WhisperModel.transcribe``."""
        kwargs = asdict(self)
        kwargs["vad_parameters"] = {"threshold": kwargs.pop("vad_threshold")}
        return kwargs


def whisper_options(settings: TranscriptionSettings) -> WhisperOptions:
    """The faster-whisper arguments for these settings."""
    return WhisperOptions(
        language=settings.language,
        beam_size=settings.beam_size,
        initial_prompt=settings.initial_prompt,
        hotwords=" ".join(settings.hot_words) or None,
        vad_threshold=settings.vad_threshold,
        word_timestamps=settings.word_timestamps,
        no_speech_threshold=settings.no_speech_threshold,
        log_prob_threshold=settings.log_prob_threshold,
        compression_ratio_threshold=settings.compression_ratio_threshold,
    )


def transcribe(
    audio_path: Path | str,
    settings: TranscriptionSettings | None = None,
    *,
    model: LoadedModel | None = None,
    options: WhisperOptions | None = None,
) -> TranscriptResult:
    """Transcribe one recording with the tuned pipeline.

    ``options`` replace the faster-whisper arguments the settings give (``whisper_options``) for
    experiments; the settings are what production uses (and the guards always follow them).
    Raises ``AudioError`` for an unreadable recording and ``ModelError`` when the model cannot be
    had.
    """
    settings = settings or TranscriptionSettings()
    started = time.perf_counter()
    audio = load_audio(audio_path)
    decoded = time.perf_counter()
    loaded = model or load(settings)
    ready = time.perf_counter()
    raw_segments, info = loaded.whisper.transcribe(
        audio.samples, **(options or whisper_options(settings)).as_kwargs()
    )
    heard = Heard(
        list(raw_segments),
        str(info.language),
        float(info.language_probability),
        float(info.duration_after_vad),
    )
    whispered = time.perf_counter()
    timings = Timings(decoded - started, ready - decoded, whispered - ready)
    return guarded_result(audio, heard, loaded, settings, timings)


def transcribe_batch(
    audio_paths: Sequence[Path | str],
    settings: TranscriptionSettings | None = None,
    *,
    model: LoadedModel | None = None,
) -> list[TranscriptResult | AudioError]:
    """Several recordings in shared model passes (the batching worker's entry), each result in
    its recording's place.

    The speech the VAD finds in the recordings is packed into shared 30 s windows
    (``transcription.packing``), decoded ``settings.batch_size`` windows at a time by
    faster-whisper's batched forward pass with the decoding options ``transcribe`` gets from the
    settings (timestamps kept: without them, the batched pipeline's default, CER was 0.50), then
    each recording's segments are guarded like ``transcribe``'s. A recording that cannot be read
    comes back as its ``AudioError`` and the others go on. Raises ``ModelError`` when the model
    cannot be had. A pass's model time is shared out among its recordings by their length.
    """
    settings = settings or TranscriptionSettings()
    started = time.perf_counter()
    audios: list[Audio | AudioError] = []
    for path in audio_paths:
        try:
            audios.append(load_audio(path))
        except AudioError as exc:
            audios.append(exc)
    decoded = time.perf_counter()
    loaded = model or load(settings)
    ready = time.perf_counter()
    readable = [audio for audio in audios if isinstance(audio, Audio)]
    heard = iter(
        decode_packed(
            [audio.samples for audio in readable],
            loaded.whisper,
            whisper_options(settings),
            settings.batch_size,
        )
    )
    whispered = time.perf_counter()
    audio_seconds = sum(audio.duration for audio in readable) or 1.0
    results = iter(
        guarded_result(
            audio,
            next(heard),
            loaded,
            settings,
            Timings(
                (decoded - started) / len(audios),
                ready - decoded,
                (whispered - ready) * audio.duration / audio_seconds,
            ),
        )
        for audio in readable
    )
    return [audio if isinstance(audio, AudioError) else next(results) for audio in audios]


def batched_options(options: WhisperOptions, tokenizer: Any) -> Any:
    """faster-whisper's ``TranscriptionOptions`` for its batched forward pass, from the same
    ``WhisperOptions`` ``transcribe`` passes (and faster-whisper's own defaults for the rest)."""
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    return TranscriptionOptions(
        beam_size=options.beam_size,
        best_of=5,
        patience=1,
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        log_prob_threshold=options.log_prob_threshold,
        no_speech_threshold=options.no_speech_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
        condition_on_previous_text=options.condition_on_previous_text,
        prompt_reset_on_temperature=0.5,
        temperatures=[options.temperature],
        initial_prompt=options.initial_prompt,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False,
        max_initial_timestamp=1.0,
        word_timestamps=options.word_timestamps,
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",
        multilingual=False,
        max_new_tokens=None,
        clip_timestamps="0",
        hallucination_silence_threshold=None,
        hotwords=options.hotwords,
    )


def decode_samples(
    samples: Samples,
    settings: TranscriptionSettings,
    loaded: LoadedModel,
    options: WhisperOptions | None = None,
) -> tuple[list[Segment], list[str], Any]:
    """Whisper, the guards and the numbers on decoded 16 kHz samples: the segments kept, why
    text was dropped, and faster-whisper's info. A streaming session (``streaming``) runs it on
    each window cut at a pause."""
    raw_segments, info = loaded.whisper.transcribe(
        samples, **(options or whisper_options(settings)).as_kwargs()
    )
    segments, dropped = guarded_segments(list(raw_segments), settings)
    return segments, dropped, info


def transcribe_recording(path: Path, settings: TranscriptionSettings) -> TranscriptResult:
    """One recording with the operator's settings, nothing else (a one-recording worker's entry).

    Raises ``AudioError`` (this recording is bad: mark the job failed, keep the others going) or
    ``ModelError`` (the worker cannot transcribe anything: stop and tell the operator).
    """
    return transcribe(path, settings)


def guarded_result(
    audio: Audio,
    heard: Heard,
    loaded: LoadedModel,
    settings: TranscriptionSettings,
    timings: Timings,
) -> TranscriptResult:
    """What Whisper heard in the recording (whichever way it was decoded: alone, packed, or in
    pieces as it grew), guarded and with numbers as digits, as every entry here returns it."""
    started = time.perf_counter()
    segments, dropped = guarded_segments(heard.segments, settings)
    guard_seconds = time.perf_counter() - started
    return TranscriptResult(
        text=" ".join(segment.text for segment in segments),
        language=heard.language,
        language_probability=heard.language_probability,
        duration=audio.duration,
        speech_duration=heard.speech_duration,
        segments=tuple(segments),
        no_speech=not segments,
        model_name=loaded.resolved.name,
        model_sha256=loaded.resolved.sha256,
        timings=replace(timings, transcribe=timings.transcribe + guard_seconds),
        dropped=tuple(dropped),
    )


def guarded_segments(
    raw_segments: list[Any], settings: TranscriptionSettings
) -> tuple[list[Segment], list[str]]:
    """Whisper's segments as kept (the guards) with numbers as digits when the settings say so,
    and why text was dropped: the one rule every way of decoding goes through."""
    segments, dropped = _guarded(raw_segments, settings)
    if settings.numbers_as_digits:
        segments = [with_digits(segment) for segment in segments]
    return segments, dropped


def _guarded(
    raw_segments: list[Any], settings: TranscriptionSettings
) -> tuple[list[Segment], list[str]]:
    phrases = (*STOCK_PHRASES, *settings.hallucinated_phrases)
    allowed_latin = allowed_latin_words(settings.hot_words)
    segments: list[Segment] = []
    dropped: list[str] = []
    for raw in raw_segments:
        where = f"segment {raw.start:.1f}-{raw.end:.1f} s"
        if raw.no_speech_prob > settings.no_speech_threshold and (
            raw.avg_logprob < settings.log_prob_threshold
        ):
            dropped.append(f"{where}: no speech ({raw.text.strip()!r})")
            continue
        words = list(raw.words or [])
        tokens = [word.word for word in words] if words else raw.text.split()
        cleaned = clean_words(tokens, phrases, allowed_latin)
        dropped.extend(f"{where}: {reason}" for reason in cleaned.dropped)
        kept_words = [words[index] for index in cleaned.kept] if words else []
        text = (
            "".join(tokens[index] for index in cleaned.kept)
            if words
            else " ".join(tokens[index] for index in cleaned.kept)
        ).strip()
        if not text:
            continue
        ratio = compression_ratio(text)
        if ratio > settings.compression_ratio_threshold:
            dropped.append(f"{where}: repetitive text (compression ratio {ratio:.1f})")
            continue
        segments.append(
            Segment(
                start=float(raw.start),
                end=float(raw.end),
                text=text,
                avg_logprob=float(raw.avg_logprob),
                no_speech_prob=float(raw.no_speech_prob),
                compression_ratio=float(ratio),
                # bool(): faster-whisper hands back numpy scalars, which JSON cannot store.
                doubtful=bool(raw.avg_logprob < settings.doubtful_log_prob),
                words=tuple(_word(word, settings) for word in kept_words),
            )
        )
    return segments, dropped


def with_digits(segment: Segment) -> Segment:
    """The segment with its spoken numbers as digits. A number's words become one word, timed
    from its first to its last and as doubtful as its least sure; the words said are kept in
    ``numbers``."""
    tokens = [word.text for word in segment.words] or segment.text.split()
    spans = find_numbers(tokens)
    if not spans:
        return segment
    words = list(segment.words)
    if words:
        for span in reversed(spans):  # from the end, so the earlier spans' indexes still hold
            said = words[span.first : span.end]
            words[span.first : span.end] = [
                Word(
                    start=said[0].start,
                    end=said[-1].end,
                    text=span.text,
                    probability=min(word.probability for word in said),
                    doubtful=any(word.doubtful for word in said),
                )
            ]
    return replace(
        segment,
        text=" ".join(replace_spans(tokens, spans)),
        words=tuple(words),
        numbers=tuple(span.number for span in spans),
    )


def _word(word: Any, settings: TranscriptionSettings) -> Word:
    return Word(
        start=float(word.start),
        end=float(word.end),
        text=word.word.strip(),
        probability=float(word.probability),
        doubtful=bool(word.probability < settings.doubtful_word_probability),
    )
