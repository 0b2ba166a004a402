"""The pipeline around Whisper, with a scripted stand-in for the model (fast, no 145 MB load)."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.transcription.conftest import ARABIC
from transcription.audio import AudioError, load_audio
from transcription.model import LoadedModel, ResolvedModel
from transcription.numbers import SpokenNumber
from transcription.pipeline import transcribe, transcribe_recording, whisper_options
from transcription.settings import TranscriptionSettings

CLIP = ARABIC / "ar02.wav"
CLIP_SECONDS = load_audio(CLIP).duration


def word(start: float, text: str, probability: float = 0.9) -> SimpleNamespace:
    return SimpleNamespace(start=start, end=start + 0.4, word=text, probability=probability)


def segment(
    text: str,
    start: float = 0.0,
    avg_logprob: float = -0.3,
    no_speech_prob: float = 0.05,
    probabilities: list[float] | None = None,
) -> SimpleNamespace:
    tokens = [f" {token}" for token in text.split()]
    probabilities = probabilities or [0.9] * len(tokens)
    return SimpleNamespace(
        start=start,
        end=start + 0.5 * len(tokens),
        text=" " + text,
        avg_logprob=avg_logprob,
        no_speech_prob=no_speech_prob,
        words=[
            word(start + 0.5 * i, token, p)
            for i, (token, p) in enumerate(zip(tokens, probabilities, strict=True))
        ],
    )


class ScriptedWhisper:
    """Answers transcribe() with fixed segments and remembers the arguments it was given."""

    def __init__(self, segments: list[SimpleNamespace], speech: float = 3.0) -> None:
        self.segments = segments
        self.speech = speech
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, audio: Any, **options: Any) -> tuple[Any, Any]:
        self.calls.append({"samples": len(audio), **options})
        info = SimpleNamespace(
            language="ar", language_probability=1.0, duration_after_vad=self.speech
        )
        return iter(self.segments), info


def scripted(segments: list[SimpleNamespace], speech: float = 3.0) -> LoadedModel:
    resolved = ResolvedModel("whisper-base-pypi", Path("/models/base"), "ab" * 32)
    return LoadedModel(resolved, ScriptedWhisper(segments, speech), "cpu", "int8")


def test_result_carries_what_a_transcript_row_needs() -> None:
    model = scripted([segment("الفاتورة مرتفعة", probabilities=[0.95, 0.3]), segment("جدا", 1.0)])
    result = transcribe(CLIP, model=model)
    assert result.text == "الفاتورة مرتفعة جدا"
    assert result.no_speech is False
    assert result.language == "ar"
    assert result.language_probability == 1.0
    assert result.duration == CLIP_SECONDS
    assert result.speech_duration == 3.0
    assert result.model_name == "whisper-base-pypi"
    assert result.model_sha256 == "ab" * 32
    assert result.timings.total >= result.timings.transcribe >= 0
    assert result.real_time_factor > 0
    assert result.avg_logprob == pytest.approx(-0.3)
    assert result.no_speech_prob == pytest.approx(0.05)
    first = result.segments[0]
    assert [w.text for w in first.words] == ["الفاتورة", "مرتفعة"]
    assert [w.doubtful for w in first.words] == [False, True]
    assert first.doubtful is False
    assert result.marked_words() == [("الفاتورة", False), ("مرتفعة", True), ("جدا", False)]


def test_without_word_timings_the_text_is_unmarked() -> None:
    plain = segment("الخط مقطوع", avg_logprob=-2.0)
    plain.words = None  # what faster-whisper gives with word_timestamps off
    result = transcribe(CLIP, model=scripted([plain]))
    assert result.marked_words() == [("الخط", False), ("مقطوع", False)]


def test_json_form() -> None:
    result = transcribe(CLIP, model=scripted([segment("الخدمة مقطوعة")]))
    data = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert data["text"] == "الخدمة مقطوعة"
    assert data["language"] == "ar"
    assert set(data) >= {"text", "language", "duration", "segments", "no_speech", "model"}
    assert data["segments"][0]["words"][0] == {
        "start": 0.0,
        "end": 0.4,
        "text": "الخدمة",
        "probability": 0.9,
        "doubtful": False,
    }
    assert data["model"]["sha256"] == "ab" * 32
    assert result.segment_dicts() == data["segments"]


def test_tuned_options_reach_whisper() -> None:
    model = scripted([])
    settings = TranscriptionSettings(hot_words=["العنكبوت الليبي", "ADSL"], initial_prompt="شكوى")
    transcribe(CLIP, settings, model=model)
    call = model.whisper.calls[0]
    assert call["samples"] == round(CLIP_SECONDS * 16000)  # 16 kHz samples, not a path
    assert call["language"] == "ar"
    assert call["temperature"] == 0.0
    assert call["beam_size"] == 5
    assert call["no_repeat_ngram_size"] == 3
    assert call["vad_filter"] is True
    assert call["vad_parameters"] == {"threshold": 0.25}
    assert call["hotwords"] == "العنكبوت الليبي ADSL"
    assert call["initial_prompt"] == "شكوى"
    assert whisper_options(TranscriptionSettings()).hotwords is None


def test_typed_options_are_exactly_the_arguments_whisper_takes() -> None:
    settings = TranscriptionSettings()
    assert whisper_options(settings).as_kwargs() == {
        "language": "ar",
        "beam_size": settings.beam_size,
        "temperature": 0.0,
        "no_repeat_ngram_size": 3,
        "condition_on_previous_text": False,
        "initial_prompt": settings.initial_prompt,
        "hotwords": None,
        "vad_filter": True,
        "vad_parameters": {"threshold": settings.vad_threshold},
        "word_timestamps": settings.word_timestamps,
        "no_speech_threshold": settings.no_speech_threshold,
        "log_prob_threshold": settings.log_prob_threshold,
        "compression_ratio_threshold": settings.compression_ratio_threshold,
    }
    from faster_whisper import WhisperModel

    accepted = inspect.signature(WhisperModel.transcribe).parameters
    assert set(whisper_options(settings).as_kwargs()) <= set(accepted)


def test_options_override_settings() -> None:
    model = scripted([])
    options = replace(whisper_options(TranscriptionSettings()), beam_size=1, language="en")
    transcribe(CLIP, model=model, options=options)
    assert model.whisper.calls[0]["beam_size"] == 1
    assert model.whisper.calls[0]["language"] == "en"


def test_nothing_heard_is_no_speech() -> None:
    result = transcribe(CLIP, model=scripted([], speech=0.0))
    assert result.no_speech is True
    assert result.text == ""
    assert result.segments == ()
    assert result.avg_logprob is None
    assert result.to_dict()["no_speech"] is True


def test_silence_segment_dropped() -> None:
    invented = segment("شكرا جزيلا", avg_logprob=-1.4, no_speech_prob=0.9)
    result = transcribe(CLIP, model=scripted([invented]))
    assert result.no_speech is True
    assert result.text == ""
    assert "no speech" in result.dropped[0]


def test_only_stock_phrases_is_no_speech() -> None:
    model = scripted([segment("اشتركوا في القناة"), segment("صلى الله عليه وسلم", 2.0)])
    result = transcribe(CLIP, model=model)
    assert result.no_speech is True
    assert len(result.dropped) == 2


def test_guards_clean_text_and_words_together() -> None:
    model = scripted([segment("الإنترنت بطيء the end مقطوع مقطوع مقطوع مقطوع")])
    result = transcribe(CLIP, model=model)
    assert result.text == "الإنترنت بطيء مقطوع"
    assert [w.text for w in result.segments[0].words] == ["الإنترنت", "بطيء", "مقطوع"]


def test_repetitive_segment_dropped() -> None:
    # A nine-word loop is longer than the n-gram guard looks; the compression ratio catches it.
    nine = "هل الخدمة متوقفة يا أخي في منطقتنا منذ أمس"
    looping = segment(" ".join([nine] * 5), start=2.0)
    result = transcribe(CLIP, model=scripted([segment("الفاتورة عالية"), looping]))
    assert result.text == "الفاتورة عالية"
    assert "compression ratio" in result.dropped[0]


def test_doubtful_segment() -> None:
    result = transcribe(CLIP, model=scripted([segment("الخط مقطوع", avg_logprob=-0.95)]))
    assert result.segments[0].doubtful is True


def test_bad_audio_fails_before_the_model() -> None:
    model = scripted([segment("لا يجب أن يصل")])
    with pytest.raises(AudioError, match="corrupt"):
        transcribe(ARABIC / "corrupt.wav", model=model)
    assert model.whisper.calls == []


def test_worker_entry_raises_audio_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match="empty file"):
        transcribe_recording(empty, TranscriptionSettings())


def test_spoken_numbers_are_digits_in_the_draft_with_the_words_said_kept() -> None:
    said = "دفعت خمسين دينار ورقمي صفر تسعة واحد اتنين"
    probabilities = [0.9, 0.8, 0.9, 0.9, 0.9, 0.3, 0.7, 0.95]
    result = transcribe(CLIP, model=scripted([segment(said, probabilities=probabilities)]))
    assert result.text == "دفعت 50 دينار ورقمي 0912"
    words = result.segments[0].words
    assert [w.text for w in words] == ["دفعت", "50", "دينار", "ورقمي", "0912"]
    # The number's words become one: timed from its first word to its last, as doubtful as
    # its least sure word (an agent must check a number Whisper was unsure of).
    phone = words[-1]
    assert (phone.start, phone.end) == (2.0, 3.9)
    assert (phone.probability, phone.doubtful) == (0.3, True)
    assert words[1].doubtful is False
    assert result.marked_words()[-1] == ("0912", True)
    assert result.numbers == (
        SpokenNumber("خمسين", "50"),
        SpokenNumber("صفر تسعة واحد اتنين", "0912"),
    )
    said_numbers = [
        {"spoken": "خمسين", "digits": "50"},
        {"spoken": "صفر تسعة واحد اتنين", "digits": "0912"},
    ]
    assert result.segment_dicts()[0]["numbers"] == said_numbers
    assert result.to_dict()["numbers"] == said_numbers


def test_numbers_without_word_timings() -> None:
    plain = segment("الفاتورة ميتين وخمسين دينار")
    plain.words = None
    result = transcribe(CLIP, model=scripted([plain]))
    assert result.text == "الفاتورة 250 دينار"
    assert result.segments[0].numbers == (SpokenNumber("ميتين وخمسين", "250"),)


def test_a_draft_without_numbers_is_untouched() -> None:
    result = transcribe(CLIP, model=scripted([segment("ولم يتصل بي أحد منذ ثلاثة أيام")]))
    assert result.text == "ولم يتصل بي أحد منذ ثلاثة أيام"
    assert result.numbers == ()
    assert result.segment_dicts()[0]["numbers"] == []


def test_numbers_as_words_when_configured() -> None:
    settings = TranscriptionSettings(numbers_as_digits=False)
    result = transcribe(CLIP, settings, model=scripted([segment("دفعت خمسين دينار")]))
    assert result.text == "دفعت خمسين دينار"
    assert result.numbers == ()
