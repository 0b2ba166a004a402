"""``prompts build``: every sound the IVR plays, rendered into Asterisk's sounds layout.

    <sounds>/ar/hotline/<prompt id>.wav   the flow's prompts
    <sounds>/ar/hotline/date/...wav       weekday, ordinal day and month for promised dates
    <sounds>/ar/digits/<0-9>.wav          what SAY DIGITS plays (Asterisk ships no Arabic)

Only what is missing or whose text changed is rendered (a manifest remembers what the build
wrote). A file the build did not write, an operator's studio recording in any format Asterisk
reads, is never overwritten and wins over the synthetic one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ivr_flows.arabic import system_prompts
from ivr_flows.engine import PROMPT_FOLDER
from ivr_flows.flow import Flow, load_flow
from ivr_flows.tts import require_tools, resolve_voice, speak

MANIFEST = ".hotline-prompts.json"
# Bump when the rendering changes, so every synthetic prompt is rendered again.
RENDERER_VERSION = "1"


@dataclass
class PromptReport:
    voice: str
    rendered: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    studio: list[str] = field(default_factory=list)


def prompt_texts(flow: Flow) -> dict[str, str]:
    """Sound name (relative to the language folder) -> the text to speak."""
    texts = {f"{PROMPT_FOLDER}/{prompt_id}": text for prompt_id, text in flow.prompts.items()}
    texts.update(system_prompts())
    return texts


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wanted(voice: str, text: str) -> str:
    return hashlib.sha256(f"{RENDERER_VERSION}\0{voice}\0{text}".encode()).hexdigest()


def build_prompts(
    out_dir: Path,
    *,
    flow: Flow | None = None,
    language: str = "ar",
    voice: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> PromptReport:
    """Render the missing prompts of ``flow`` (the built-in one by default) under
    ``out_dir/language`` (settings.ivr.sounds_dir and settings.ivr.language).

    Raises ``SpeechError`` (a one-line message) when espeak-ng or sox is needed but missing.
    """
    flow = flow if flow is not None else load_flow()
    lang_dir = out_dir / language
    manifest_path = lang_dir / MANIFEST
    manifest: dict[str, dict[str, str]] = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    )
    todo: dict[str, str] = {}
    chosen: str | None = None
    report = PromptReport(voice="")
    for sound, text in sorted(prompt_texts(flow).items()):
        target = lang_dir / f"{sound}.wav"
        ours = manifest.get(sound)
        others = [p for p in target.parent.glob(f"{target.name[:-4]}.*") if p != target]
        mine = ours is not None and target.is_file() and _sha256(target) == ours["sha256"]
        if others or (target.is_file() and not mine):
            report.studio.append(sound)
            manifest.pop(sound, None)
            if mine:
                target.unlink()  # a studio file in another format: let Asterisk find only that
            continue
        chosen = chosen or resolve_voice(voice)
        if mine and ours is not None and ours["wanted"] == _wanted(chosen, text):
            report.cached.append(sound)
            continue
        todo[sound] = text
    report.voice = chosen or ""  # empty: every prompt is a studio recording
    if todo:
        require_tools()

    def render(sound: str) -> tuple[str, dict[str, str]]:
        target = lang_dir / f"{sound}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial.wav")
        speak(todo[sound], report.voice, partial)
        partial.replace(target)  # Asterisk never plays a half-written prompt
        if progress is not None:
            progress(sound)
        return sound, {"wanted": _wanted(report.voice, todo[sound]), "sha256": _sha256(target)}

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for sound, entry in pool.map(render, todo):
            manifest[sound] = entry
            report.rendered.append(sound)
    lang_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return report
