"""Play a WAV through whatever player this machine has: the client's side of listening (the
recording came from the server, checked against its SHA-256, into a private temporary folder).
Nothing here reads the recordings folder; it imports nothing heavy."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# In order of preference; each plays an 8 kHz telephone WAV as is.
PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aplay", ("-q",)),  # alsa-utils
    ("paplay", ()),  # pulseaudio-utils / pipewire-pulse
    ("play", ("-q",)),  # sox
    ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "error")),  # ffmpeg
)
INSTALL_HINT = "no audio player found: install alsa-utils (aplay), pulseaudio-utils, sox or ffmpeg"


def find_player() -> list[str] | None:
    for name, options in PLAYERS:
        found = shutil.which(name)
        if found is not None:
            return [found, *options]
    return None


@dataclass(frozen=True)
class Played:
    """How a playback ended: ``error`` is None when the player said it played the file."""

    error: str | None


def failure(name: str, exit_status: int, said: str) -> str:
    """A player's failure in one line: its name, its exit status and its last words (ALSA's
    "cannot find card" or "audio open error", not the screenful before them)."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    last = f": {lines[-1]}" if lines else ""
    return f"{name} stopped with exit code {exit_status}{last}"


def play(command: list[str], path: Path) -> Played:
    """Play and wait. What the player prints is kept from the terminal: a machine without audio
    makes it print much, and only the last line says why."""
    done = subprocess.run(
        [*command, str(path)],
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    if done.returncode == 0:
        return Played(None)
    return Played(failure(Path(command[0]).name, done.returncode, done.stderr))
