"""The client's audio player: whichever the machine has, in order of preference."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_player import find_player, play


def test_a_player_is_found_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if name == "play" else None)
    assert find_player() == ["/usr/bin/play", "-q"]
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert find_player() is None


def test_a_failing_player_is_one_line_with_its_last_words(tmp_path: Path) -> None:
    player = tmp_path / "aplay"
    player.write_text(
        "#!/bin/sh\n"
        + "echo 'ALSA lib pcm.c:2664:(snd_pcm_open_noupdate) Unknown PCM default' >&2\n" * 5
        + "echo 'aplay: main:831: audio open error: No such file or directory' >&2\nexit 1\n",
        encoding="utf-8",
    )
    player.chmod(0o755)
    played = play([str(player)], tmp_path / "call.wav")
    assert played.error == (
        "aplay stopped with exit code 1: "
        "aplay: main:831: audio open error: No such file or directory"
    )
    quiet = tmp_path / "quiet"
    quiet.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    quiet.chmod(0o755)
    assert play([str(quiet)], tmp_path / "call.wav").error is None
