"""The WAV files a simulated call leaves behind: 8 kHz, 16-bit, mono, as MixMonitor writes them."""

from __future__ import annotations

import math
import random
import struct
import wave
from functools import cache
from pathlib import Path

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: 16-bit signed little-endian


def tone(seconds: float = 1.0, frequency: float = 425.0, *, seed: int = 0) -> bytes:
    """A tone with a little noise: stands in for a caller when no speech is supplied."""
    rng = random.Random(seed)
    samples = bytearray()
    for n in range(int(seconds * SAMPLE_RATE)):
        value = 6000 * math.sin(2 * math.pi * frequency * n / SAMPLE_RATE) + rng.gauss(0, 300)
        samples += int(max(-32768, min(32767, value))).to_bytes(2, "little", signed=True)
    return bytes(samples)


def read_pcm(audio: bytes | Path) -> bytes:
    """A caller's voice as raw PCM: bytes are 8 kHz 16-bit mono samples, a Path a WAV file."""
    if isinstance(audio, bytes):
        return audio
    with wave.open(str(audio), "rb") as source:
        shape = (source.getframerate(), source.getsampwidth(), source.getnchannels())
        if shape != (SAMPLE_RATE, SAMPLE_WIDTH, 1):
            raise ValueError(f"{audio}: need 8 kHz 16-bit mono, got {shape}")
        return source.readframes(source.getnframes())


@cache
def _stand_in() -> bytes:
    return tone()


def caller_voice(audio: bytes | Path | None) -> bytes:
    """What a simulated caller says: their audio, or a tone when none was supplied."""
    return _stand_in() if audio is None else read_pcm(audio)


def write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader polling the directory never sees half a file.
    partial = path.with_name(path.name + ".part")
    with wave.open(str(partial), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(SAMPLE_WIDTH)
        target.setframerate(SAMPLE_RATE)
        target.writeframes(pcm)
    partial.replace(path)


def write_open_wav(path: Path, pcm: bytes) -> None:
    """A WAV as MixMonitor leaves it while the call is up: the samples are there, but the
    header's RIFF and data lengths say 0 (written only when Asterisk closes the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(OPEN_WAV_HEADER + pcm)


def _open_wav_header() -> bytes:
    rate, width = SAMPLE_RATE, SAMPLE_WIDTH
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * width, width, 8 * width)  # PCM, mono
    return b"RIFF" + bytes(4) + b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + bytes(4)


# The header Asterisk writes first: 8 kHz 16-bit mono PCM, its two lengths 0 until the close.
OPEN_WAV_HEADER = _open_wav_header()


def close_wav(path: Path) -> None:
    """Fill in the lengths of a WAV written from ``OPEN_WAV_HEADER`` on, as Asterisk does when
    the recording ends."""
    size = path.stat().st_size
    with path.open("r+b") as wav:
        wav.seek(4)
        wav.write(struct.pack("<I", size - 8))
        wav.seek(len(OPEN_WAV_HEADER) - 4)
        wav.write(struct.pack("<I", size - len(OPEN_WAV_HEADER)))
