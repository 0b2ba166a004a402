"""Bounded input through the `hotline` command (issue 17, item 5), on a real site (tests/site.py)
on SQLite and PostgreSQL: a complaint text far over its limit, typed with --text or written in
the editor during review, is refused in one clear line naming the field and the limit; nothing
is stored, the draft is still there, and an edited text is kept for the agent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from casebook.models import COMPLAINT_TEXT, CaseStatus
from tests.conftest import BACKENDS
from tests.site import Site, backend_url, running_site

DRAFT = "الفاتورة غير صحيحة هذا الشهر"
REFUSED = "refused: نص غير مقبول (text refused): complaint_case.confirmed_text has"


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("amal", ["agent"], "customer-care")
        yield running


def assert_draft_kept(site: Site, reference: str) -> None:
    case = site.stored_case(reference)
    assert (case.status, case.draft_text, case.confirmed_text) == (
        CaseStatus.DRAFT.value,
        DRAFT,
        None,
    )


def test_100_kb_with_text_is_refused_naming_the_field_and_the_limit(site: Site) -> None:
    reference = site.case(status=CaseStatus.DRAFT, draft_text=DRAFT)
    amal = site.people["amal"]
    typed = "x" * 102_400
    refused = amal.run("drafts", "confirm", reference, "--category", "billing", "--text", typed)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr == f"{REFUSED} 102400 characters, at most {COMPLAINT_TEXT}\n"
    assert_draft_kept(site, reference)
    # The same text at the limit goes through: the limit, not the path, refused it.
    at_limit = "x" * COMPLAINT_TEXT
    amal.ok("drafts", "confirm", reference, "--category", "billing", "--text", at_limit)
    assert site.stored_case(reference).confirmed_text == at_limit


def editor_writing(folder: Path, text: str) -> str:
    """An $EDITOR that replaces the draft with ``text``."""
    script = folder / "long-editor"
    content = folder / "long-text.txt"
    content.write_text(text, encoding="utf-8")
    script.write_text(
        f"#!{sys.executable}\nimport shutil, sys\nshutil.copyfile({str(content)!r}, sys.argv[1])\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def test_1_mb_from_the_editor_is_refused_in_review_and_nothing_is_lost(site: Site) -> None:
    reference = site.case(status=CaseStatus.DRAFT, draft_text=DRAFT)
    amal = site.people["amal"]
    line = "الخدمة مقطوعة منذ أسبوع ولم يتصل بنا أحد\n"
    megabyte = line * (1_000_000 // len(line.encode("utf-8")))
    assert 990_000 < len(megabyte.encode("utf-8")) <= 1_000_000
    env = amal.env(EDITOR=editor_writing(amal.home, megabyte))
    # Edit, accept (category 1, department as it is), refused; then quit.
    result = amal.run("review", stdin="e\na\n1\n\nq\n", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("refused: ")]
    characters = len(megabyte.strip())
    assert refusals == [f"{REFUSED} {characters} characters, at most {COMPLAINT_TEXT}"]
    # The refusal is said under the draft, after its (long) text, where the agent sees it.
    assert result.stdout.rstrip().endswith("[q]uit [a]:")
    assert_draft_kept(site, reference)
    kept = amal.unsent_folder / f"{reference}.txt"
    assert kept.read_text(encoding="utf-8") == megabyte.strip()
