"""Play a WAV through whatever player this machine has: the client's side of listening (the
recording came from the server, checked against its SHA-256, into a private temporary folder).
Nothing here reads the recordings folder; it imports nothing heavy."""

from __future__ import annotations

import shutil
import subprocess
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


def play(command: list[str], path: Path) -> int:
    """Play and wait; the player's exit status."""
    return subprocess.run([*command, str(path)], check=False).returncode
