"""Accuracy and speed of the transcription pipeline, with and without spoken numbers as digits.

    .venv/bin/python bench/transcribe.py [--data tests/data/arabic] [--limit N] [--json]

"before" is the pipeline as it was before issue 19 (``numbers_as_digits: false``: Whisper's
number words left as they are); "after" is the same pipeline writing spoken numbers as digits
(transcription/numbers.py). Both run in the same process on the same files, clip by clip in
turn, with the same loaded model (the shipped Whisper base, int8, ``transcription.cpu_threads``
threads), so the only difference is the conversion.

Each draft is scored against the clip's text as an agent types it (``digits``: numbers as
digits) and as spoken (``spoken``: numbers as words): CER and WER pooled over a group, on
normalised text (casebook.arabic), and number accuracy, the numbers written exactly right out of
those said (``extra``: digit strings in the drafts that nobody said). Groups: all utterances, the
``tune`` and ``heldout`` halves of the manifest's split, and each half by voice and by whether
the clip carries numbers. ``cer_words_for_digits`` is the CER of the spoken reference against
the typed one: the most the conversion could gain if Whisper heard every word. Settings and
converter rules are chosen on ``tune`` only; ``heldout`` is the honest figure. Issue 19's
acceptance: on ``heldout``, CER against the digit form falls by at least 0.08 and CER against the
spoken form does not rise.

RTF = wall-clock processing seconds / audio seconds (lower is faster); CPU RTF = this process's
CPU seconds / audio seconds, which other load on the machine does not inflate. Non-speech clips
(silence, noise, music) are reported separately: the pipeline must return no text for them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from transcription.metrics import NumberCount, cer, number_count, wer  # noqa: E402
from transcription.model import load  # noqa: E402
from transcription.pipeline import transcribe  # noqa: E402
from transcription.settings import TranscriptionSettings  # noqa: E402

RUNS = {"before": False, "after": True}  # run name -> numbers_as_digits
TARGET_GAIN = 0.08  # issue 19: heldout CER against the digit form, before - after


@dataclass(frozen=True)
class Utterance:
    id: str
    file: str
    voice: str
    split: str
    spoken: str
    typed: str
    numbers: tuple[str, ...]

    def groups(self) -> list[str]:
        numbers = "numbers" if self.numbers else "no numbers"
        return ["all", self.split, f"{self.split}, {self.voice}", f"{self.split}, {numbers}"]


@dataclass
class Run:
    drafts: list[tuple[Utterance, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock processing time
    cpu_seconds: float = 0.0  # CPU time of this process (all threads): robust to other load
    audio: float = 0.0  # audio duration
    non_speech: dict[str, str] = field(default_factory=dict)  # clip id -> text produced

    def summary(self) -> dict[str, Any]:
        groups: dict[str, list[tuple[Utterance, str]]] = {}
        for utterance, text in self.drafts:
            for group in utterance.groups():
                groups.setdefault(group, []).append((utterance, text))
        return {
            "rtf": self.seconds / self.audio if self.audio else 0.0,
            "cpu_rtf": self.cpu_seconds / self.audio if self.audio else 0.0,
            "groups": {name: score(drafts) for name, drafts in sorted(groups.items())},
            "non_speech": self.non_speech,
        }


def score(drafts: Sequence[tuple[Utterance, str]]) -> dict[str, float | int]:
    """Error rates against both forms of the reference, and number accuracy, pooled."""
    digits = [(utterance.typed, text) for utterance, text in drafts]
    spoken = [(utterance.spoken, text) for utterance, text in drafts]
    numbers = sum(
        (number_count(utterance.numbers, text) for utterance, text in drafts),
        NumberCount(0, 0, 0),
    )
    return {
        "clips": len(drafts),
        "cer_digits": cer(digits),
        "wer_digits": wer(digits),
        "cer_spoken": cer(spoken),
        "wer_spoken": wer(spoken),
        # The spoken text itself against the typed one: what the conversion would remove from
        # CER against the digit form if Whisper heard every word (the same in every run).
        "cer_words_for_digits": cer([(u.typed, u.spoken) for u, _ in drafts]),
        "numbers_right": numbers.right,
        "numbers_said": numbers.said,
        "numbers_extra": numbers.extra,
        "number_accuracy": numbers.accuracy,
    }


def utterances(clips: list[dict[str, Any]]) -> list[Utterance]:
    return [
        Utterance(
            clip["id"],
            clip["file"],
            clip["voice"],
            clip["split"],
            clip["text"],
            clip["typed"],
            tuple(clip["numbers"]),
        )
        for clip in clips
        if clip["kind"] == "speech"
    ]


def bench(
    data: Path, limit: int | None, settings: TranscriptionSettings, verbose: bool
) -> dict[str, Run]:
    clips = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    speech = utterances(clips)[:limit]
    others = [clip["id"] for clip in clips if clip["kind"] in ("silence", "noise", "music")]
    model = load(settings)
    variants = {
        name: settings.model_copy(update={"numbers_as_digits": digits})
        for name, digits in RUNS.items()
    }
    runs = {name: Run() for name in RUNS}
    # Warm-up, so neither side pays for the first call's one-off allocations.
    transcribe(data / speech[0].file, settings, model=model)
    for clip in [*speech, *others]:
        path = data / (clip.file if isinstance(clip, Utterance) else f"{clip}.wav")
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = transcribe(path, variants[name], model=model)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if not isinstance(clip, Utterance):
                run.non_speech[clip] = result.text
                continue
            run.drafts.append((clip, result.text))
            run.seconds += wall
            run.cpu_seconds += cpu
            run.audio += result.duration
            if verbose:
                rate = cer([(clip.typed, result.text)])
                print(f"{clip.id} {clip.split:7} {name:6} CER(digits) {rate:.2f}  {result.text}")
    return runs


def gains(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per group, how much lower each error rate is after (positive: better)."""
    return {
        group: {
            key: before["groups"][group][key] - after["groups"][group][key]
            for key in ("cer_digits", "wer_digits", "cer_spoken", "wer_spoken")
        }
        for group in before["groups"]
    }


def acceptance(gain: dict[str, dict[str, float]]) -> dict[str, Any]:
    heldout = gain.get("heldout", {"cer_digits": 0.0, "cer_spoken": 0.0})
    return {
        "heldout_cer_digits_gain": heldout["cer_digits"],
        "target": TARGET_GAIN,
        "heldout_cer_spoken_gain": heldout["cer_spoken"],
        "met": heldout["cer_digits"] >= TARGET_GAIN and heldout["cer_spoken"] >= 0.0,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['files']} utterances ({result['with_numbers']} with numbers), "
        f"{result['audio_seconds']} s of 8 kHz telephone audio"
    )
    before, after = result["before"], result["after"]
    print(f"RTF before {before['rtf']:.3f} after {after['rtf']:.3f}; CPU RTF before "
          f"{before['cpu_rtf']:.3f} after {after['cpu_rtf']:.3f}")  # fmt: skip
    header = f"{'group':30}{'run':>7}{'CER dig':>9}{'WER dig':>9}{'CER spk':>9}{'WER spk':>9}"
    print(f"{header}{'numbers right/said (+extra)':>30}")
    for group in before["groups"]:
        for name in RUNS:
            row = result[name]["groups"][group]
            numbers = f"{row['numbers_right']}/{row['numbers_said']} (+{row['numbers_extra']})"
            print(
                f"{group if name == 'before' else '':30}{name:>7}{row['cer_digits']:9.3f}"
                f"{row['wer_digits']:9.3f}{row['cer_spoken']:9.3f}{row['wer_spoken']:9.3f}"
                f"{numbers:>30}"
            )
    check = result["acceptance"]
    ceiling = after["groups"].get("heldout", {}).get("cer_words_for_digits", 0.0)
    print(
        f"heldout: CER against digits {check['heldout_cer_digits_gain']:+.3f} better "
        f"(target {check['target']}; {ceiling:.3f} if every word were heard), against spoken "
        f"{check['heldout_cer_spoken_gain']:+.3f}: {'met' if check['met'] else 'NOT met'}"
    )
    for name in RUNS:
        for clip, text in result[name]["non_speech"].items():
            print(f"{name} on {clip}: {text!r}" if text else f"{name} on {clip}: no speech (empty)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "arabic")
    parser.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every transcript")
    args = parser.parse_args()
    settings = TranscriptionSettings(cache_dir=args.cache_dir)
    runs = bench(args.data, args.limit, settings, args.verbose)
    drafts = runs["before"].drafts
    result: dict[str, Any] = {
        "files": len(drafts),
        "with_numbers": sum(1 for utterance, _ in drafts if utterance.numbers),
        "audio_seconds": round(runs["before"].audio, 1),
        **{name: run.summary() for name, run in runs.items()},
    }
    result["gain"] = gains(result["before"], result["after"])
    result["acceptance"] = acceptance(result["gain"])
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
