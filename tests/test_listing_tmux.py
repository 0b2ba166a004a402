"""Issue 18's acceptance at a real terminal (tmux, 80 columns): `cases list`, `cases show REF`
and `calls list` with references, caller numbers and dates whole, the Arabic in reading order
(a complaint's first words on its first line) and its tanween kept."""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_listing import display_width
from cli_render import visual
from tests.conftest import BACKENDS
from tests.site import HOTLINE, Site, backend_url, running_site
from tests.test_listing_cli import COMPLAINT, DATE, NUMBER, called
from tests.tmux import Terminal, opened_terminal

pytestmark = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        yield running


@pytest.fixture
def terminal(site: Site) -> Iterator[Terminal]:
    admin = site.people["admin"]
    # `hotline` by name: a command line short enough not to wrap, wherever the checkout is.
    env = admin.env(PATH=f"{Path(HOTLINE).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("COLUMNS", None)  # the terminal's own width
    with opened_terminal(env, admin.home, rows=50) as terminal:
        yield terminal


def letters(text: str) -> str:
    """Presentation forms back to base letters (tanween and harakat kept)."""
    return unicodedata.normalize("NFKC", text)


def shown(terminal: Terminal, *args: str) -> list[str]:
    return terminal.shown(" ".join(["hotline", *args]))


def drawn_first_words(count: int) -> str:
    """The complaint's first words as a left-to-right terminal draws them: right-most."""
    return letters(visual(" ".join(COMPLAINT.split()[:count])))


def test_listings_at_80_columns_keep_what_people_act_on_whole(
    site: Site, terminal: Terminal
) -> None:
    reference = called(site)

    listed = shown(terminal, "cases", "list")
    (row,) = [i for i, line in enumerate(listed) if reference in line]
    assert NUMBER in listed[row] and DATE.search(listed[row])
    # The complaint's cell, right-most words first: the first line holds its first words.
    assert drawn_first_words(4) in letters(listed[row]), "\n".join(listed)
    assert "ً" in letters("\n".join(listed[row : row + 2]))  # tanween (مستمراً) is kept
    assert all(display_width(line) <= 80 for line in listed)

    story = shown(terminal, "cases", "show", reference)
    assert any(reference in line for line in story) and any(NUMBER in line for line in story)
    assert any(letters(line).strip().endswith(drawn_first_words(3)) for line in story), story

    calls = shown(terminal, "calls", "list")
    (call,) = [line for line in calls if reference in line]
    assert NUMBER in call and DATE.search(call), "\n".join(calls)
    assert all(display_width(line) <= 80 for line in calls)
