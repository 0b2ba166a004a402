"""CER, WER and real-time factor of the transcription pipeline against bare faster-whisper.

    .venv/bin/python bench/transcribe.py [--data tests/data/arabic] [--limit N] [--json]

Both run in the same process on the same files, with the same loaded model (the shipped Whisper
base, int8, ``transcription.cpu_threads`` threads), so the only difference is what the pipeline
adds: audio decoding, tuned decoding options, VAD and the guards. "Bare" is
``WhisperModel.transcribe(path)`` with faster-whisper's defaults (auto language, temperature
fallback, no VAD). RTF = wall-clock processing seconds / audio seconds (lower is faster); CPU RTF
= this process's CPU seconds / audio seconds, which other load on the machine does not inflate
(with 2 threads, CPU RTF / 2 is the RTF of an idle 2-core box). Error rates are pooled over the
set, on normalised text (casebook.arabic). Non-speech clips (silence,
noise, music) are reported separately: the pipeline must return no text for them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from transcription.metrics import cer, wer  # noqa: E402
from transcription.model import LoadedModel, load  # noqa: E402
from transcription.pipeline import transcribe  # noqa: E402
from transcription.settings import TranscriptionSettings  # noqa: E402


@dataclass
class Run:
    name: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock processing time
    cpu_seconds: float = 0.0  # CPU time of this process (all threads): robust to other load
    audio: float = 0.0  # audio duration
    non_speech: dict[str, str] = field(default_factory=dict)  # clip id -> text produced

    def summary(self) -> dict[str, float]:
        return {
            "cer": cer(self.pairs),
            "wer": wer(self.pairs),
            "rtf": self.seconds / self.audio if self.audio else 0.0,
            "cpu_rtf": self.cpu_seconds / self.audio if self.audio else 0.0,
        }


def run_pipeline(
    model: LoadedModel, settings: TranscriptionSettings, path: Path
) -> tuple[str, float]:
    result = transcribe(path, settings, model=model)
    return result.text, result.duration


def run_bare(model: LoadedModel, path: Path) -> tuple[str, float]:
    segments, info = model.whisper.transcribe(str(path))
    return "".join(segment.text for segment in segments).strip(), float(info.duration)


def bench(
    data: Path, limit: int | None, settings: TranscriptionSettings, verbose: bool
) -> list[Run]:
    clips = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    speech = [clip for clip in clips if clip["kind"] == "speech"][:limit]
    others = [clip for clip in clips if clip["kind"] in ("silence", "noise", "music")]
    model = load(settings)
    runs = {"pipeline": Run("pipeline"), "bare": Run("bare")}
    # Warm-up, so neither side pays for the first call's one-off allocations.
    run_pipeline(model, settings, data / speech[0]["file"])
    for clip in [*speech, *others]:
        path = data / clip["file"]
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            text, duration = (
                run_pipeline(model, settings, path) if name == "pipeline" else run_bare(model, path)
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if clip["kind"] != "speech":
                run.non_speech[clip["id"]] = text
                continue
            run.pairs.append((clip["text"], text))
            run.seconds += wall
            run.cpu_seconds += cpu
            run.audio += duration
            if verbose:
                rate = cer([(clip["text"], text)])
                print(f"{clip['id']} {name:8} CER {rate:.2f} RTF {wall / duration:.2f}  {text}")
    return list(runs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "arabic")
    parser.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every transcript")
    args = parser.parse_args()
    settings = TranscriptionSettings(cache_dir=args.cache_dir)
    pipeline, bare = bench(args.data, args.limit, settings, args.verbose)
    result: dict[str, Any] = {
        "files": len(pipeline.pairs),
        "audio_seconds": round(pipeline.audio, 1),
        "pipeline": pipeline.summary(),
        "bare": bare.summary(),
        "non_speech": {"pipeline": pipeline.non_speech, "bare": bare.non_speech},
    }
    result["ratio"] = {
        key: result["pipeline"][key] / result["bare"][key] if result["bare"][key] else 0.0
        for key in ("cer", "wer", "rtf", "cpu_rtf")
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    print(f"{result['files']} utterances, {result['audio_seconds']} s of 8 kHz telephone audio")
    print(f"{'':18}{'CER':>7}{'WER':>7}{'RTF':>7}{'CPU RTF':>9}")
    for name in ("pipeline", "bare", "ratio"):
        row = result[name]
        label = "pipeline / bare" if name == "ratio" else name
        print(f"{label:18}{row['cer']:7.3f}{row['wer']:7.3f}{row['rtf']:7.3f}{row['cpu_rtf']:9.3f}")
    for name in ("pipeline", "bare"):
        for clip, text in result["non_speech"][name].items():
            print(f"{name} on {clip}: {text!r}" if text else f"{name} on {clip}: no speech (empty)")


if __name__ == "__main__":
    main()
