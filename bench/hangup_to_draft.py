"""From the end of the recording to the draft: streamed while the caller speaks vs whole file.

    .venv/bin/python bench/hangup_to_draft.py [--messages 6] [--seconds 60] [--split heldout]
        [--threads N] [--pace 1.0] [--json]

Each message is speech clips of one half of the test set (tests/data/arabic: ``--split
heldout``, the default and the honest figure, or ``tune``, the half settings are chosen on, or
``all``) one after another, a pause of ``--gap`` seconds between them and a faint line hiss
throughout, until it lasts ``--seconds``; its reference is the clips' typed texts joined (the
drafts write numbers as digits). The mu-law clips are brought to 16-bit PCM, as Record writes. It
is written into a folder as Asterisk's Record writes a message: the header with both lengths 0,
then 20 ms of samples at a time at real-time pace (``--pace 2`` writes twice as fast), then the
lengths filled in at the close.

Streaming: a ``RecordingFollower`` watches the folder, as it does in the worker, and the delay
is from the close of the file to the draft ``follower(path)`` returns; the time at the close is
split into waiting for the decoding under way (the last window's draft, started at the last
pause) and decoding what no draft covered. Whole file: today's path, ``transcribe(path)`` on the
closed file, timed the same way, after the stream's draft so the two never share the CPU. "work"
is the seconds each spent transcribing (the stream's during the call: it transcribes each window
again at each pause). Both use the same loaded model in the same process, with the worker's
threads: ``transcription.cpu_threads``' default, the cores less one (1 on a 2-core machine: the
other is the IVR's), unless ``--threads`` says otherwise. The delay excludes what both paths share
at hangup (the listener's ingest, the job queue), which is small against the transcription. CER
is pooled over the messages on normalised text (``transcription.metrics``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from hotline.simulator.audio import (  # noqa: E402
    OPEN_WAV_HEADER,
    SAMPLE_RATE,
    close_wav,
    read_pcm,
)
from transcription import streaming  # noqa: E402
from transcription.audio import WHISPER_RATE, load_audio, resample  # noqa: E402
from transcription.metrics import cer  # noqa: E402
from transcription.model import load  # noqa: E402
from transcription.pipeline import transcribe  # noqa: E402
from transcription.settings import TranscriptionSettings  # noqa: E402
from transcription.streaming import RecordingFollower  # noqa: E402

DATA = ROOT / "tests" / "data" / "arabic"
FRAME_SECONDS = 0.02  # Asterisk writes a frame of 20 ms at a time
HISS_LEVEL = 30  # of 32767: about -60 dBFS, a quiet telephone line


@dataclass(frozen=True)
class Message:
    pcm: bytes
    reference: str


@dataclass
class Route:
    name: str
    delays: list[float] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    work: float = 0.0  # seconds spent transcribing, during the call and after it
    waited: list[float] = field(default_factory=list)  # streaming: for the decoding under way
    tail: list[float] = field(default_factory=list)  # streaming: decoding the end at the close
    window: list[float] = field(default_factory=list)  # streaming: the last window's seconds

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.delays)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        summary = {
            "p50": statistics.median(ordered),
            "p95": p95,
            "cer": cer(self.pairs),
            "work": self.work,
        }
        if self.waited:
            summary["waited_mean"] = statistics.mean(self.waited)
            summary["tail_mean"] = statistics.mean(self.tail)
            summary["window_mean"] = statistics.mean(self.window)
            summary["tails"] = sum(1 for seconds in self.tail if seconds > 0)
        return summary


def messages(count: int, seconds: float, gap: float, split: str = "heldout") -> list[Message]:
    """``count`` messages of at least ``seconds`` made of the ``split`` half's clips ("all": every
    clip), each starting seven clips further on; the reference is their typed form (the drafts
    write numbers as digits)."""
    clips = [
        clip
        for clip in json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
        if clip["kind"] == "speech" and split in ("all", clip["split"])
    ]
    rng = np.random.default_rng(15654)
    pause = bytes(int(gap * SAMPLE_RATE) * 2)
    made = []
    for number in range(count):
        pcm, texts, index = b"", [], number * 7
        while len(pcm) < seconds * SAMPLE_RATE * 2:
            clip = clips[index % len(clips)]
            pcm += telephone_pcm(DATA / clip["file"]) + pause
            texts.append(clip["typed"])
            index += 1
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
        hiss = rng.normal(0, HISS_LEVEL, samples.size).astype(np.int32)
        with_hiss = np.clip(samples + hiss, -32768, 32767).astype("<i2").tobytes()
        made.append(Message(with_hiss, " ".join(texts)))
    return made


def telephone_pcm(path: Path) -> bytes:
    """A clip as Record would write it: 8 kHz 16-bit PCM (half the test set is mu-law, decoded
    and brought back to 8 kHz by the pipeline's own resampler)."""
    audio = load_audio(path)
    if audio.codec == "pcm_s16le":
        return read_pcm(path)
    narrow = resample(audio.samples, WHISPER_RATE, SAMPLE_RATE)
    return (np.clip(narrow, -1.0, 1.0 - 1 / 32768) * 32768).round().astype("<i2").tobytes()


def record(path: Path, pcm: bytes, pace: float) -> None:
    """Write ``pcm`` into ``path`` as Record does, frame by frame at ``pace`` times real time."""
    frame = int(FRAME_SECONDS * SAMPLE_RATE) * 2
    started = time.perf_counter()
    with path.open("wb") as wav:
        wav.write(OPEN_WAV_HEADER)
        wav.flush()
        for number, start in enumerate(range(0, len(pcm), frame)):
            wav.write(pcm[start : start + frame])
            wav.flush()
            due = started + (number + 1) * FRAME_SECONDS / pace
            time.sleep(max(0.0, due - time.perf_counter()))
    close_wav(path)


def bench(
    count: int,
    seconds: float,
    gap: float,
    pace: float,
    split: str,
    threads: int | None,
    verbose: bool,
) -> dict[str, Any]:
    settings = TranscriptionSettings(cache_dir=ROOT / "var" / "models", cpu_threads=threads)
    model = load(settings)
    stream, whole = Route("streaming"), Route("whole file")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        follower = RecordingFollower(Path(folder), "message-*.wav", settings, model)
        follower.start()
        try:
            for number, message in enumerate(messages(count, seconds, gap, split)):
                path = Path(folder) / f"message-{number}.wav"
                writer = threading.Thread(target=record, args=(path, message.pcm, pace))
                writer.start()
                writer.join()
                closed = time.perf_counter()
                streamed = follower(path)
                stream.delays.append(time.perf_counter() - closed)
                if follower.last_closing is not None:
                    stream.waited.append(follower.last_closing.waited)
                    stream.tail.append(follower.last_closing.tail)
                    stream.window.append(follower.last_closing.window)
                closed = time.perf_counter()
                whole_file = transcribe(path, settings, model=model)
                whole.delays.append(time.perf_counter() - closed)
                stream.pairs.append((message.reference, streamed.text))
                whole.pairs.append((message.reference, whole_file.text))
                stream.work += streamed.processing_seconds
                whole.work += whole_file.processing_seconds
                if verbose:
                    print(
                        f"message {number} ({streamed.duration:.1f} s): streaming "
                        f"{stream.delays[-1]:.2f} s CER {cer([stream.pairs[-1]]):.3f} "
                        f"(waited {stream.waited[-1] if stream.waited else 0:.2f} s, end "
                        f"{stream.tail[-1] if stream.tail else 0:.2f} s, last window "
                        f"{stream.window[-1] if stream.window else 0:.1f} s), "
                        f"whole file {whole.delays[-1]:.2f} s CER {cer([whole.pairs[-1]]):.3f}"
                    )
        finally:
            follower.stop()
        streamed_whole = follower.whole
    result: dict[str, Any] = {
        "messages": count,
        "seconds": seconds,
        "pace": pace,
        "split": split,
        "threads": settings.threads(),
        "window_seconds": streaming.WINDOW_SECONDS,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "streaming": stream.summary(),
        "whole_file": whole.summary(),
        "streams_broken": streamed_whole,
    }
    result["ratio"] = {
        key: result["streaming"][key] / result["whole_file"][key]
        for key in ("p50", "p95", "work")
        if result["whole_file"][key]
    }
    result["cer_difference"] = result["streaming"]["cer"] - result["whole_file"]["cer"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each message")
    parser.add_argument("--gap", type=float, default=0.8, help="pause between clips (seconds)")
    parser.add_argument("--pace", type=float, default=1.0, help="times real time")
    parser.add_argument(
        "--split",
        choices=("heldout", "tune", "all"),
        default="heldout",
        help="the test set's half the messages are made of (tune settings on tune only)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CTranslate2 threads (default: the setting's default, the cores less one)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=streaming.WINDOW_SECONDS,
        help="commit the streamed window at the first pause past this many seconds (a trial)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every message")
    args = parser.parse_args()
    streaming.WINDOW_SECONDS = args.window
    result = bench(
        args.messages, args.seconds, args.gap, args.pace, args.split, args.threads, args.verbose
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return
    print(
        f"{result['messages']} messages of {result['seconds']:.0f} s written at "
        f"{result['pace']:g}x real time from the {result['split']} clips; "
        f"{result['threads']} CTranslate2 thread(s); windows committed past "
        f"{result['window_seconds']:g} s; load average {result['load_average']['before']:.2f} "
        f"before, {result['load_average']['after']:.2f} after"
    )
    print(f"{'end of recording -> draft':28}{'p50 s':>8}{'p95 s':>8}{'CER':>8}{'work s':>9}")
    for name in ("streaming", "whole_file"):
        row = result[name]
        print(
            f"{name.replace('_', ' '):28}{row['p50']:8.2f}{row['p95']:8.2f}{row['cer']:8.3f}"
            f"{row['work']:9.1f}"
        )
    ratio = result["ratio"]
    print(
        f"{'streaming / whole file':28}{ratio.get('p50', 0):8.2f}{ratio.get('p95', 0):8.2f}"
        f"{result['cer_difference']:+8.3f}{ratio.get('work', 0):9.2f}"
    )
    print("(CER column of the last row: streaming minus whole file; work: seconds transcribing)")
    row = result["streaming"]
    if "waited_mean" in row:
        print(
            f"streaming at the close, mean s: {row['waited_mean']:.2f} waiting for the decoding "
            f"under way, {row['tail_mean']:.2f} decoding the end ({row['tails']} of "
            f"{result['messages']} messages had an end left to decode); the last window "
            f"{row['window_mean']:.1f} s of audio"
        )
    if result["streams_broken"]:
        print(f"{result['streams_broken']} message(s) fell back to the whole file")


if __name__ == "__main__":
    main()
