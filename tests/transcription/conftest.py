"""Shared fixtures for the transcription tests: the committed test set and the real model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from transcription.model import LoadedModel, load
from transcription.settings import TranscriptionSettings

ARABIC = Path(__file__).resolve().parents[1] / "data" / "arabic"


def manifest() -> list[dict[str, Any]]:
    return list(json.loads((ARABIC / "manifest.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> TranscriptionSettings:
    # One pass on every core: the tests transcribe one call at a time (the setting's default
    # runs a pass per core on one thread each, for the worker's bursts).
    return TranscriptionSettings(
        cache_dir=tmp_path_factory.mktemp("models"), concurrency=1, cpu_threads=os.cpu_count() or 1
    )


@pytest.fixture(scope="session")
def real_model(real_settings: TranscriptionSettings) -> LoadedModel:
    """The shipped Whisper model, assembled and loaded once for the whole session."""
    return load(real_settings)
