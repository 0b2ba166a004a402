"""Call recordings in, 16 kHz mono float32 out (what Whisper's feature extractor expects).

Asterisk writes 8 kHz 16-bit mono WAV by default; that is read with the standard library and
numpy, so the common case does not depend on FFmpeg. G.711 (mu-law, A-law) and GSM, in a WAV
container or as Asterisk's raw ``.ulaw``/``.alaw``/``.gsm``/``.sln`` files, go through PyAV.
Anything unreadable raises ``AudioError`` naming the file and the reason, so one bad recording
fails its own job and nothing else.
"""

from __future__ import annotations

import functools
import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

WHISPER_RATE = 16_000
# Asterisk's headerless formats: file suffix -> (FFmpeg demuxer, sample rate).
RAW_FORMATS = {
    ".sln": ("s16le", 8000),
    ".sln16": ("s16le", 16000),
    ".ulaw": ("mulaw", 8000),
    ".ul": ("mulaw", 8000),
    ".alaw": ("alaw", 8000),
    ".al": ("alaw", 8000),
    ".gsm": ("gsm", 8000),
}
# Whisper's time resolution is 20 ms; a recording shorter than one frame holds nothing to hear.
MIN_SECONDS = 0.02

Samples = NDArray[np.float32]


class AudioError(Exception):
    """A recording that cannot be decoded; ``str()`` names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class Audio:
    samples: Samples  # mono float32 in [-1, 1] at WHISPER_RATE
    duration: float  # seconds of the recording
    source_rate: int
    codec: str  # e.g. "pcm_s16le", "pcm_mulaw", "gsm"


class _Decoded(NamedTuple):
    samples: Samples  # mono float32 at ``rate``
    rate: int
    source_rate: int
    codec: str


class _NotPcmWav(Exception):
    """The file is not a plain PCM WAV; FFmpeg may still read it."""


def load_audio(path: Path | str) -> Audio:
    """Decode a recording to 16 kHz mono float32, or raise AudioError saying why not."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise AudioError(path, "not a regular file")
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except OSError as exc:
        raise AudioError(path, f"cannot read the file ({exc.strerror})") from exc
    if not header:
        raise AudioError(path, "empty file (0 bytes)")
    raw = RAW_FORMATS.get(path.suffix.lower())
    if raw is not None:
        decoded = _decode_with_ffmpeg(path, *raw)
    else:
        try:
            decoded = _read_pcm_wav(path, header)
        except _NotPcmWav as not_pcm:
            decoded = _decode_with_ffmpeg(path, None, None, wav_problem=str(not_pcm))
    duration = decoded.samples.size / decoded.rate
    if duration < MIN_SECONDS:
        raise AudioError(path, f"zero-length recording ({decoded.samples.size} samples of audio)")
    if not np.all(np.isfinite(decoded.samples)):
        raise AudioError(path, "the audio contains invalid (NaN or infinite) samples")
    samples = resample(decoded.samples, decoded.rate, WHISPER_RATE)
    return Audio(samples, duration, decoded.source_rate, decoded.codec)


def _read_pcm_wav(path: Path, header: bytes) -> _Decoded:
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise _NotPcmWav("not a RIFF/WAVE file")
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except wave.Error as exc:
        if str(exc).startswith("unknown format"):
            # A compressed WAV (G.711, GSM "wav49"): not for the wave module.
            raise _NotPcmWav(str(exc)) from exc
        raise AudioError(path, f"corrupt WAV header ({exc})") from exc
    except EOFError as exc:
        raise AudioError(path, "truncated WAV (the file ends inside its header)") from exc
    if channels < 1 or rate < 1 or width not in (1, 2, 3, 4):
        raise AudioError(
            path, f"corrupt WAV header ({channels} channels, {rate} Hz, {8 * width}-bit)"
        )
    usable = len(frames) - len(frames) % (channels * width)  # a cut-off last frame is dropped
    codec = "pcm_u8" if width == 1 else f"pcm_s{8 * width}le"
    return _Decoded(pcm_to_mono(frames[:usable], width, channels), rate, rate, codec)


def pcm_to_mono(frames: bytes, width: int, channels: int) -> Samples:
    """Whole PCM frames as mono float32 in [-1, 1] (the channels averaged)."""
    mono = _pcm_to_float(frames, width).reshape(-1, channels).mean(axis=1)
    return np.asarray(mono, dtype=np.float32)


def _pcm_to_float(frames: bytes, width: int) -> NDArray[np.float64]:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 3:
        triples = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        # Place the 3 bytes in the top of an int32 so the sign comes along, then scale.
        padded = np.zeros((triples.shape[0], 4), dtype=np.uint8)
        padded[:, 1:] = triples
        return padded.view("<i4").ravel().astype(np.float64) / 2.0**31
    dtype = "<i2" if width == 2 else "<i4"
    return np.frombuffer(frames, dtype=dtype).astype(np.float64) / 2.0 ** (8 * width - 1)


def _decode_with_ffmpeg(
    path: Path, demuxer: str | None, rate: int | None, wav_problem: str = ""
) -> _Decoded:
    """Decode with PyAV straight to 16 kHz mono float32 (FFmpeg's resampler)."""
    import av

    options = {"sample_rate": str(rate)} if rate else {}
    chunks: list[Samples] = []
    try:
        with av.open(str(path), format=demuxer, options=options) as container:
            if not container.streams.audio:
                raise AudioError(path, "not an audio file (no audio stream found)")
            stream = container.streams.audio[0]
            codec = str(stream.codec_context.name)
            source_rate = int(stream.rate or rate or 0)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=WHISPER_RATE)
            for frame in container.decode(stream):
                chunks.extend(_plane(out) for out in resampler.resample(frame))
            chunks.extend(_plane(out) for out in resampler.resample(None))
    except av.FFmpegError as exc:
        reason = str(getattr(exc, "strerror", None) or exc)
        if wav_problem.startswith("unknown format"):
            raise AudioError(path, f"corrupt or unsupported WAV ({wav_problem}; {reason})") from exc
        raise AudioError(path, f"not an audio file ({reason})") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return _Decoded(samples, WHISPER_RATE, source_rate, codec)


def _plane(frame: Any) -> Samples:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)


def resample(samples: Samples, source_rate: int, target_rate: int, first: int = 0) -> Samples:
    """Band-limited rational resampling (polyphase windowed sinc), e.g. 8 kHz -> 16 kHz.

    Upsampling telephone audio by simple interpolation would mirror the 0-4 kHz band into
    4-8 kHz, which Whisper hears as noise; the low-pass at the lower Nyquist rate avoids that.
    ``first``: only the output from that sample on (a growing recording's earlier output does
    not change once ``settled`` says so: each output sample depends on the input near it).
    """
    if source_rate == target_rate or samples.size == 0:
        return samples[first:].astype(np.float32, copy=False)
    up, down, half, kernel = _filter(source_rate, target_rate)
    out_len = math.ceil(samples.size * up / down)
    per_output = 2 * half // up + 2
    source = samples.astype(np.float64)
    out = np.empty(max(0, out_len - first), dtype=np.float32)
    block = 65_536
    for start in range(first, out_len, block):
        position = np.arange(start, min(start + block, out_len), dtype=np.int64) * down
        lowest = -((half - position) // up)  # ceil((position - half) / up)
        index = lowest[:, None] + np.arange(per_output)
        offset = position[:, None] - index * up + half
        valid = (offset >= 0) & (offset <= 2 * half) & (index >= 0) & (index < source.size)
        values = source[np.clip(index, 0, source.size - 1)]
        weights = kernel[np.clip(offset, 0, 2 * half)]
        out[start - first : start - first + position.size] = np.sum(
            values * weights * valid, axis=1
        )
    return out


def settled(size: int, source_rate: int, target_rate: int) -> int:
    """How many leading samples of ``resample`` over ``size`` input samples stay the same
    whatever input follows (the rest still reach past the input's end)."""
    if source_rate == target_rate:
        return size
    up, down, half, _ = _filter(source_rate, target_rate)
    return max(0, ((size - 1) * up - half) // down + 1)


@functools.cache
def _filter(source_rate: int, target_rate: int) -> tuple[int, int, int, NDArray[np.float64]]:
    """The polyphase factors, the filter's half-length in upsampled samples, and the filter."""
    gcd = math.gcd(source_rate, target_rate)
    up, down = target_rate // gcd, source_rate // gcd
    factor = max(up, down)
    half = 10 * factor  # 10 zero crossings each side
    taps = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.sinc(taps / factor) * np.kaiser(2 * half + 1, 8.0) * (up / factor)
    return up, down, half, kernel
