"""The real shipped model on the committed telephone test set (slow: about four minutes).

The model is assembled and loaded once for the session. Thresholds come from bench runs on this
set (bench/transcribe.py, "after": numbers as digits, scored against the form an agent types),
with a margin for CPU differences in int8 kernels, never from wall-clock time.
"""

from __future__ import annotations

import pytest

from tests.transcription.conftest import ARABIC, manifest
from transcription.audio import AudioError
from transcription.metrics import NumberCount, cer, number_count, wer
from transcription.model import MODEL_BIN_SHA256, LoadedModel, load
from transcription.pipeline import transcribe
from transcription.settings import TranscriptionSettings

pytestmark = pytest.mark.slow

# The 36 complaints without numbers: 0.435 with AVX-512 int8 kernels (2026-11-22), 0.466 with
# AVX2; 0.428 on 2026-11-30 (AVX-512).
MEASURED_CER = 0.435
CER_LIMIT = MEASURED_CER + 0.065
# The 32 with numbers, against the typed form: 1.21 on 2026-11-30 (AVX-512). Above 1: Whisper
# base hears few number words of these voices at 8 kHz, and the digits an agent types are far
# shorter than the words it writes instead (bench/transcribe.py prints the details).
MEASURED_NUMBERS_CER = 1.21
NUMBERS_CER_LIMIT = MEASURED_NUMBERS_CER + 0.1
WER_LIMIT = 1.0  # measured 0.90; Whisper base misspells most Arabic words of synthetic speech
MAX_EMPTY_DRAFTS = 1


def test_cer_on_the_arabic_set(
    real_model: LoadedModel, real_settings: TranscriptionSettings
) -> None:
    plain: list[tuple[str, str]] = []
    with_numbers: list[tuple[str, str]] = []
    empty: list[str] = []
    invented = NumberCount(0, 0, 0)
    for clip in manifest():
        if clip["kind"] != "speech":
            continue
        result = transcribe(ARABIC / clip["file"], real_settings, model=real_model)
        assert result.language == "ar"
        if result.no_speech:
            empty.append(clip["id"])
        # an empty draft counts as all wrong
        (with_numbers if clip["numbers"] else plain).append((clip["typed"], result.text))
        if not clip["numbers"]:
            invented += number_count([], result.text)
    assert len(plain) >= 30 and len(with_numbers) >= 30
    # The int8 kernels differ by CPU (AVX2 or AVX-512): on one, a clip may decode into a
    # repetition loop that the guard rightly drops. One such clip is tolerated; more is not.
    assert len(empty) <= MAX_EMPTY_DRAFTS, empty
    assert cer(plain) < CER_LIMIT
    assert wer(plain) < WER_LIMIT
    assert cer(with_numbers) < NUMBERS_CER_LIMIT
    assert invented.extra == 0, "a draft of a complaint that says no number has digits"


@pytest.mark.parametrize("clip", ["silence", "noise", "music"])
def test_no_speech_gives_an_empty_draft(
    real_model: LoadedModel, real_settings: TranscriptionSettings, clip: str
) -> None:
    result = transcribe(ARABIC / f"{clip}.wav", real_settings, model=real_model)
    assert result.no_speech is True
    assert result.text == ""
    assert result.segments == ()


def test_result_identifies_the_model(
    real_model: LoadedModel, real_settings: TranscriptionSettings
) -> None:
    result = transcribe(ARABIC / "ar03.wav", real_settings, model=real_model)
    assert result.model_name == "whisper-base-pypi"
    assert result.model_sha256 == MODEL_BIN_SHA256
    assert real_model.compute_type == "int8"
    words = [word for segment in result.segments for word in segment.words]
    assert words, "word timestamps and probabilities are on by default"
    assert all(0.0 <= word.start <= word.end <= result.duration + 0.5 for word in words)
    assert all(0.0 <= word.probability <= 1.0 for word in words)


def test_corrupt_wav_raises(real_model: LoadedModel, real_settings: TranscriptionSettings) -> None:
    with pytest.raises(AudioError, match="corrupt"):
        transcribe(ARABIC / "corrupt.wav", real_settings, model=real_model)


@pytest.mark.parametrize("name", ["ulaw.wav", "gsm.wav"])
def test_compressed_recordings_transcribe(
    real_model: LoadedModel, real_settings: TranscriptionSettings, name: str
) -> None:
    # Two seconds of ar03 ("الإنترنت بطيء جدا ..."): G.711 and GSM decode to the same speech.
    result = transcribe(ARABIC / "formats" / name, real_settings, model=real_model)
    assert not result.no_speech
    assert result.duration == pytest.approx(2.0, abs=0.05)


def test_the_shipped_model_given_as_a_path(
    real_model: LoadedModel, real_settings: TranscriptionSettings
) -> None:
    # The way an operator runs small, medium, large-v3 or turbo: any CTranslate2 Whisper
    # directory as model_path, device and precision detected (this machine: CPU, int8).
    settings = TranscriptionSettings.model_validate(
        {**real_settings.model_dump(), "model": "path", "model_path": real_model.resolved.path}
    )
    loaded = load(settings)
    assert loaded is not real_model
    assert loaded.whisper is real_model.whisper  # the same files are not loaded twice
    assert loaded.resolved.name == real_model.resolved.path.name
    assert loaded.resolved.sha256 == MODEL_BIN_SHA256
    assert (loaded.device, loaded.compute_type) == ("cpu", "int8")
    clip = ARABIC / "formats" / "ulaw.wav"
    by_path = transcribe(clip, settings, model=loaded)
    assert by_path.model_name == real_model.resolved.path.name
    assert by_path.text
    assert by_path.text == transcribe(clip, real_settings, model=real_model).text
