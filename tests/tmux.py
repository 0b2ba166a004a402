"""A real terminal for tests: tmux at a fixed size, typed into and read back."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

# What a person's shell needs from their environment (tests/site.py's Person.env).
PASSED = ("HOME", "PATH", "PYTHONPATH", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "LANG")


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

    def shown(self, command: str) -> list[str]:
        """The lines ``command`` printed on a cleared screen, once it ended with exit code 0.
        Its end is a mark of its own: a fixed one could still be on the screen from the command
        before, read back before `clear` ran (as happened on a loaded CI machine)."""
        mark = f"END-{uuid.uuid4().hex[:8]}"
        self.type("clear", "Enter")
        self.type(f"{command}; echo {mark}-$?", "Enter")
        lines = self.wait_for(f"{mark}-0").splitlines()
        start = next(i for i, line in enumerate(lines) if f"{mark}-$?" in line)
        return lines[start + 1 : next(i for i, line in enumerate(lines) if f"{mark}-0" in line)]


@contextlib.contextmanager
def opened_terminal(
    env: dict[str, str], cwd: Path, *, rows: int, passed: Sequence[str] = ()
) -> Iterator[Terminal]:
    """bash in an 80-column tmux of ``rows`` rows, with ``env``'s PASSED names and ``passed``."""
    server = f"hl-{uuid.uuid4().hex[:8]}"
    command = ["tmux", "-L", server, "new-session", "-d", "-s", "t", "-x", "80", "-y", str(rows)]
    for name in (*PASSED, *passed):
        if name in env:
            command += ["-e", f"{name}={env[name]}"]
    command += ["bash", "--norc", "--noprofile"]
    subprocess.run(command, check=True, cwd=cwd, env=env)
    try:
        yield Terminal(server, "t")
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], check=False)
