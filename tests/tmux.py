"""A real terminal for tests: tmux at a fixed size, typed into and read back."""

from __future__ import annotations

import subprocess
import time


class Terminal:
    """A tmux session on a server of its own (-L), so no other tmux's environment leaks in."""

    def __init__(self, server: str, session: str) -> None:
        self.server = server
        self.session = session

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, check=True
        ).stdout

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        # -J: a line the terminal wrapped comes back whole.
        return self.tmux("capture-pane", "-p", "-J", "-t", self.session)

    def wait_for(self, text: str, safety_seconds: float = 60) -> str:
        deadline = time.monotonic() + safety_seconds
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")
