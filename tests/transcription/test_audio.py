from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.transcription.conftest import ARABIC
from transcription.audio import WHISPER_RATE, AudioError, load_audio, resample


def write_wav(
    path: Path, samples: np.ndarray, rate: int = 8000, width: int = 2, channels: int = 1
) -> Path:
    """PCM WAV from float samples in [-1, 1], shape (frames,) or (frames, channels)."""
    frames = samples.reshape(len(samples), channels)
    if width == 1:
        data = np.round(frames * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(frames * (2**23 - 1)).astype("<i4").reshape(-1, 1).view(np.uint8)
        data = ints.reshape(-1, 4)[:, :3].tobytes()
    else:
        dtype = "<i2" if width == 2 else "<i4"
        data = np.round(frames * (2 ** (8 * width - 1) - 1)).astype(dtype).tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(data)
    return path


def tone(rate: int, hz: float = 440.0, seconds: float = 1.0, level: float = 0.5) -> np.ndarray:
    return level * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)


def test_asterisk_8khz_wav() -> None:
    audio = load_audio(ARABIC / "ar01.wav")
    assert audio.source_rate == 8000
    assert audio.codec == "pcm_s16le"
    assert audio.samples.dtype == np.float32
    assert audio.samples.size == round(audio.duration * WHISPER_RATE)
    assert 7.0 < audio.duration < 9.0
    assert 0.05 < float(np.abs(audio.samples).max()) <= 1.0


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_widths(tmp_path: Path, width: int) -> None:
    path = write_wav(tmp_path / "tone.wav", tone(8000), width=width)
    audio = load_audio(path)
    assert audio.duration == pytest.approx(1.0)
    assert float(np.abs(audio.samples).max()) == pytest.approx(0.5, abs=0.02)


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left = tone(8000, level=0.8)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, np.zeros_like(left)], 1), channels=2)
    audio = load_audio(path)
    assert audio.duration == pytest.approx(1.0)
    assert float(np.abs(audio.samples).max()) == pytest.approx(0.4, abs=0.02)


def test_16khz_is_not_resampled(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "wide.wav", tone(16000), rate=16000)
    audio = load_audio(path)
    assert audio.source_rate == 16000
    assert audio.samples.size == 16000


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("ulaw.wav", "pcm_mulaw"),
        ("alaw.wav", "pcm_alaw"),
        ("gsm.wav", "gsm_ms"),
        ("clip.gsm", "gsm"),
        ("clip.ulaw", "pcm_mulaw"),
    ],
)
def test_telephone_codecs(name: str, codec: str) -> None:
    audio = load_audio(ARABIC / "formats" / name)
    assert audio.codec == codec
    assert audio.source_rate == 8000
    assert audio.duration == pytest.approx(2.0, abs=0.03)
    assert audio.samples.size == pytest.approx(2 * WHISPER_RATE, abs=500)
    assert float(np.abs(audio.samples).max()) > 0.05


def test_raw_signed_linear(tmp_path: Path) -> None:
    path = tmp_path / "call.sln"
    path.write_bytes((tone(8000) * 32767).astype("<i2").tobytes())
    audio = load_audio(path)
    assert audio.duration == pytest.approx(1.0, abs=0.01)


def assert_refused(path: Path, reason: str) -> None:
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(path) in str(caught.value)
    assert reason in caught.value.reason
    assert caught.value.path == path


def test_missing_file(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nothing.wav", "file not found")


def test_directory(tmp_path: Path) -> None:
    assert_refused(tmp_path, "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "locked.wav", tone(8000))
    path.chmod(0)
    assert_refused(path, "cannot read the file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    assert_refused(path, "empty file")


def test_zero_length_wav(tmp_path: Path) -> None:
    assert_refused(write_wav(tmp_path / "zero.wav", np.zeros(0)), "zero-length")


def test_one_sample_is_zero_length(tmp_path: Path) -> None:
    assert_refused(write_wav(tmp_path / "blip.wav", np.zeros(1)), "zero-length")


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes((ARABIC / "ar01.wav").read_bytes()[:30])
    assert_refused(path, "WAV")


def test_corrupt_fmt_chunk() -> None:
    assert_refused(ARABIC / "corrupt.wav", "corrupt")


def test_zero_channels(tmp_path: Path) -> None:
    data = bytearray((ARABIC / "ar01.wav").read_bytes())
    data[22:24] = (0).to_bytes(2, "little")  # channel count
    path = tmp_path / "nochannels.wav"
    path.write_bytes(bytes(data))
    assert_refused(path, "corrupt WAV header")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio at all\n" * 50, encoding="utf-8")
    assert_refused(path, "not an audio file")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_refused(path, "not an audio file")


def test_truncated_data_keeps_what_is_there(tmp_path: Path) -> None:
    # A recording cut short (Asterisk killed mid-call) still has its first seconds.
    data = (ARABIC / "ar01.wav").read_bytes()
    path = tmp_path / "short.wav"
    path.write_bytes(data[: 44 + 8000 * 2])
    assert load_audio(path).duration == pytest.approx(1.0, abs=0.01)


def test_resample_8k_to_16k_keeps_the_tone() -> None:
    out = resample(tone(8000, 1000).astype(np.float32), 8000, 16000)
    expected = tone(16000, 1000)
    assert out.size == 16000
    assert np.abs(out[100:-100] - expected[100:-100]).max() < 1e-3


def test_resample_does_not_mirror_the_band() -> None:
    # A 3 kHz tone at 8 kHz must not gain a 5 kHz image when upsampled (no aliasing).
    out = resample(tone(8000, 3000).astype(np.float32), 8000, 16000)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    freqs = np.fft.rfftfreq(out.size, 1 / 16000)
    image = spectrum[np.abs(freqs - 5000) < 50].max()
    assert image < spectrum.max() * 1e-3


def test_resample_any_rational_ratio() -> None:
    out = resample(tone(44100, 440).astype(np.float32), 44100, 16000)
    assert out.size == 16000
    assert np.abs(out[500:-500] - tone(16000, 440)[500:-500]).max() < 1e-3
