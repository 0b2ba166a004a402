"""Arabic text to an 8 kHz 16-bit mono WAV: espeak-ng, or espeak-ng driving an MBROLA voice.

MBROLA ar1/ar2 sound far better than espeak-ng's own Arabic but are licensed for non-commercial
use only: fine for tests and demos; a production hotline replaces the prompts with studio
recordings (``build_prompts`` never overwrites those).

The phoneme repair is the one ``tests/data/build_arabic_set.py`` found for the test audio: espeak-ng
sends phonemes the MBROLA Arabic inventories lack (``R`` for every ر), and a diphone a voice lacks
makes mbrola abort unless it is bridged by a short pause or one side is dropped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

MBROLA_VOICES = Path("/usr/share/mbrola")
SAMPLE_RATE = 8000
WORDS_PER_MINUTE = 145
# espeak-ng's Arabic phonemes that the MBROLA ar1/ar2 inventories lack, mapped to the nearest
# symbol they have. Without "R" -> "r" mbrola drops (or aborts on) every ر; ar2's table also
# forgets غ ("Q"), and a word-final غ before a consonant comes out as "gH".
PHONEME_FIXES = {"R": "r", "Q": "G", "gH": "G"}
MISSING_DIPHONE = re.compile(r"Unknown recovery for (\S+)-(\S+) segment")
# A diphone missing from a voice (ar1 has no l-?, as in "بالإنترنت") is first bridged by a pause
# this long, short enough to sound like a glottal onset; if the voice lacks the pause diphone too,
# the second phoneme is dropped (its time goes to the first), as a hamza is in fast speech.
BRIDGE_MS = 12
VOICES = ("espeak-ng", "mbrola-ar1", "mbrola-ar2")


class SpeechError(Exception):
    """Speech could not be rendered; the message says what to install or what failed."""


def resolve_voice(voice: str) -> str:
    """``auto`` becomes MBROLA ar1 when installed, else espeak-ng; a named voice is checked."""
    if voice == "auto":
        return "mbrola-ar1" if _mbrola_ready("ar1") else "espeak-ng"
    if voice not in VOICES:
        raise SpeechError(f"unknown voice {voice!r} (one of auto, {', '.join(VOICES)})")
    if voice.startswith("mbrola-") and not _mbrola_ready(voice.removeprefix("mbrola-")):
        name = voice.removeprefix("mbrola-")
        raise SpeechError(
            f"voice {voice} needs mbrola and mbrola-{name}: apt-get install mbrola mbrola-{name} "
            "(Debian contrib/non-free)"
        )
    return voice


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SpeechError(
            f"{' and '.join(missing)} not installed: apt-get install espeak-ng sox "
            "(needed to render prompts; studio recordings in the sounds folder need neither)"
        )


def _mbrola_ready(name: str) -> bool:
    return shutil.which("mbrola") is not None and (MBROLA_VOICES / name / name).is_file()


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)


def speak(text: str, voice: str, target: Path) -> None:
    """Render ``text`` with a resolved voice into ``target`` (8 kHz, 16-bit, mono WAV)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        if voice == "espeak-ng":
            result = _run(["espeak-ng", "-v", "ar", "-s", str(WORDS_PER_MINUTE), "-w", str(raw),
                           text])  # fmt: skip
            if result.returncode != 0:
                raise SpeechError(f"espeak-ng failed: {result.stderr.strip()}")
        else:
            _speak_mbrola(text, voice.removeprefix("mbrola-"), raw)
        result = _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                       "-e", "signed-integer", str(target)])  # fmt: skip
        if result.returncode != 0:
            raise SpeechError(f"sox failed: {result.stderr.strip()}")


def fix_phonemes(pho: str, repairs: dict[tuple[str, str], str]) -> str:
    """Rename unknown phonemes; bridge or drop inside each diphone the voice lacks."""
    lines: list[list[str]] = []
    for line in pho.splitlines():
        fields = line.split()
        if not fields:
            continue
        fields[0] = PHONEME_FIXES.get(fields[0], fields[0])
        repair = repairs.get((lines[-1][0], fields[0])) if lines else None
        if repair == "drop":
            lines[-1][1] = str(int(lines[-1][1]) + int(fields[1]))
            continue
        if repair == "bridge":
            lines.append(["_", str(BRIDGE_MS)])
        lines.append(fields)
    return "\n".join(" ".join(fields) for fields in lines) + "\n"


def _speak_mbrola(text: str, name: str, target: Path) -> None:
    espeak = _run(["espeak-ng", "-q", "-v", f"mb-{name}", "-s", str(WORDS_PER_MINUTE), "--pho",
                   text])  # fmt: skip
    if espeak.returncode != 0 or not espeak.stdout.strip():
        raise SpeechError(f"espeak-ng failed for {text!r}: {espeak.stderr.strip()}")
    repairs: dict[tuple[str, str], str] = {}
    # Each round repairs one more missing diphone; a sentence has far fewer than this.
    for _ in range(50):
        pho = fix_phonemes(espeak.stdout, repairs)
        result = _run(["mbrola", str(MBROLA_VOICES / name / name), "-", str(target)], stdin=pho)
        found = MISSING_DIPHONE.search(result.stderr)
        if result.returncode == 0 and not found:
            return
        if found is None or repairs.get((found[1], found[2])) == "drop":
            break
        missing = (found[1], found[2])
        # A pause bridge that left "_-X" missing: drop the phoneme after the original pair.
        bridged = [pair for pair, how in repairs.items()
                   if how == "bridge" and missing[0] == "_" and pair[1] == missing[1]]  # fmt: skip
        for pair in bridged:
            repairs[pair] = "drop"
        if not bridged:
            repairs[missing] = "drop" if missing in repairs or missing[0] == "_" else "bridge"
    raise SpeechError(f"mbrola failed for {text!r}: {result.stderr.strip()}")
