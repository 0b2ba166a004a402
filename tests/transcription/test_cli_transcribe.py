"""`hotline transcribe FILE [--json]` with the real model, as a person or a script runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.transcription.conftest import ARABIC
from tests.transcription.test_pipeline import scripted, segment
from transcription import pipeline
from transcription.result import TranscriptResult
from transcription.settings import TranscriptionSettings

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def transcribe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`hotline transcribe` as an operator runs it: in a site's folder (an operator command
    refuses to run where no site is configured), the model's cache in the test's folder."""
    (tmp_path / "config.yaml").write_text("transcription:\n  cache_dir: models\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOTLINE_")}
    return subprocess.run(
        [HOTLINE, "transcribe", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_transcribe_json_prints_text_language_duration_and_segments(tmp_path: Path) -> None:
    result = transcribe(tmp_path, str(ARABIC / "ar01.wav"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["language"] == "ar"
    assert data["duration"] == pytest.approx(8.08, abs=0.05)
    assert any("\u0600" <= char <= "\u06ff" for char in data["text"])
    assert data["segments"] and {"start", "end", "text", "words"} <= set(data["segments"][0])
    assert data["no_speech"] is False


@pytest.mark.slow
def test_a_corrupt_file_is_one_clear_line(tmp_path: Path) -> None:
    result = transcribe(tmp_path, str(ARABIC / "corrupt.wav"))
    assert result.returncode == 1
    assert "corrupt.wav" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_option_refuses_a_directory_that_is_no_model_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "whisper-large-v3"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "whisper"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    result = transcribe(tmp_path, str(ARABIC / "ar03.wav"), "--model", str(folder))
    assert result.returncode == 1
    assert f"transcription.model_path {folder} holds a Hugging Face" in result.stderr
    assert "ct2-transformers-converter" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_operator_sees_the_numbers_as_said_and_where_the_model_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.app import operator
    from hotline.app.config import Settings

    seen: list[TranscriptionSettings] = []

    def scripted_transcribe(path: Path, options: TranscriptionSettings) -> TranscriptResult:
        seen.append(options)
        return pipeline.transcribe(path, options, model=scripted([segment("دفعت خمسين دينار")]))

    monkeypatch.setattr(operator, "transcribe", scripted_transcribe)
    model_dir = tmp_path / "whisper-small-ct2"
    shown = operator.transcribe_file(Settings(), ARABIC / "ar03.wav", model_dir)
    assert seen[0].model == "path" and seen[0].model_path == model_dir.absolute()
    # One file is one pass on every core, whatever the worker's passes are.
    assert (seen[0].passes(), seen[0].threads()) == (1, os.cpu_count())
    assert [word for word, _ in shown.marked_words] == ["دفعت", "50", "دينار"]
    assert shown.numbers == [("50", "خمسين")]
    assert shown.data["numbers"] == [{"spoken": "خمسين", "digits": "50"}]
    assert shown.facts.endswith("on cpu (int8)")
