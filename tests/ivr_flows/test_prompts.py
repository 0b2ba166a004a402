"""prompts build: Asterisk's layout, 8 kHz WAVs, cache, studio recordings, missing tools."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr_flows import tts
from ivr_flows.flow import load_flow
from ivr_flows.prompts import build_prompts, prompt_texts
from ivr_flows.tts import SpeechError

needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="apt-get install espeak-ng sox",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full build (about two seconds) that the tests copy and change."""
    out = tmp_path_factory.mktemp("sounds")
    build_prompts(out, voice="espeak-ng")
    return out


@pytest.fixture
def sounds(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sounds"
    shutil.copytree(built, copy)
    return copy


@needs_tts
def test_every_prompt_digit_and_date_word_is_an_8khz_mono_wav(sounds: Path) -> None:
    names = prompt_texts(load_flow())
    for n in range(10):
        assert f"digits/{n}" in names
    assert {"hotline/date/day-31", "hotline/date/month-12", "hotline/date/weekday-6"} <= set(names)
    for name in names:
        with wave.open(str(sounds / "ar" / f"{name}.wav"), "rb") as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
            assert wav.getnframes() > 800, name


@needs_tts
def test_a_second_build_renders_nothing(sounds: Path) -> None:
    report = build_prompts(sounds, voice="espeak-ng")
    assert report.rendered == [] and report.studio == []
    assert len(report.cached) == len(prompt_texts(load_flow()))


@needs_tts
def test_a_studio_recording_is_kept_and_wins(sounds: Path) -> None:
    studio = sounds / "ar" / "hotline" / "welcome.wav"
    studio.write_bytes(b"RIFF studio recording")
    ulaw = sounds / "ar" / "hotline" / "thanks.ulaw"
    ulaw.write_bytes(b"\xff" * 800)

    report = build_prompts(sounds, voice="espeak-ng")

    assert set(report.studio) == {"hotline/welcome", "hotline/thanks"}
    assert studio.read_bytes() == b"RIFF studio recording"
    # The synthetic one goes, so Asterisk can only find the studio recording.
    assert not (sounds / "ar" / "hotline" / "thanks.wav").exists()
    assert report.rendered == []


@needs_tts
def test_a_changed_text_is_rendered_again(sounds: Path, tmp_path: Path) -> None:
    flow = load_flow()
    changed = flow.model_copy(update={"prompts": {**flow.prompts, "goodbye": "إلى اللقاء."}})
    before = (sounds / "ar" / "hotline" / "goodbye.wav").read_bytes()

    report = build_prompts(sounds, flow=changed, voice="espeak-ng")

    assert report.rendered == ["hotline/goodbye"]
    assert (sounds / "ar" / "hotline" / "goodbye.wav").read_bytes() != before


@pytest.mark.skipif(not tts._mbrola_ready("ar1"), reason="apt-get install mbrola mbrola-ar1")
def test_mbrola_renders_the_letter_ra(tmp_path: Path) -> None:
    # Without the phoneme fix mbrola aborts on "ر" (espeak-ng sends R, which ar1 lacks).
    tts.speak("رقم الشكوى", "mbrola-ar1", tmp_path / "ra.wav")
    with wave.open(str(tmp_path / "ra.wav"), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() > 2000


def test_missing_espeak_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpeechError, match=r"^espeak-ng and sox not installed: apt-get install"):
        build_prompts(tmp_path / "sounds", voice="auto")


def test_missing_mbrola_voice_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tts, "MBROLA_VOICES", tmp_path)
    with pytest.raises(SpeechError, match="apt-get install mbrola mbrola-ar2"):
        tts.resolve_voice("mbrola-ar2")
    assert tts.resolve_voice("auto") == "espeak-ng"
