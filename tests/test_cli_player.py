"""The client's audio player: whichever the machine has, in order of preference."""

from __future__ import annotations

import pytest

from cli_player import find_player


def test_a_player_is_found_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}" if name == "play" else None)
    assert find_player() == ["/usr/bin/play", "-q"]
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert find_player() is None
