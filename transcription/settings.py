"""The transcription package's settings section: config.yaml's transcription."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, model_validator

from casebook.settings import Section


class TranscriptionSettings(Section):
    # "whisper-base-pypi" is the multilingual base model shipped on PyPI; "path" uses model_path.
    model: Literal["whisper-base-pypi", "path"] = "whisper-base-pypi"
    model_path: Path | None = None
    cache_dir: Path = Path("var/models")
    # auto: CUDA (float16) when CTranslate2 sees a GPU, else CPU (int8).
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CTranslate2's precisions; auto: int8 on CPU, float16 on CUDA (float32 where it lacks them).
    compute_type: Literal[
        "auto",
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ] = "auto"
    # Model passes run at once: the worker's threads, each claiming its own batch, on as many
    # CTranslate2 replicas (inter_threads). None: one per core. Separate passes keep every core
    # busy through a burst without the lock-step of one pass's threads, which a core taken by
    # the IVR or another job stalls (on 2 shared cores, one pass on 2 threads took 1.4-1.7x the
    # time of one thread). A caller's `#` still reached the 'registered' prompt in 0.05-0.14 s
    # (p95) while 100 messages drained (bench/drain.py).
    concurrency: int | None = Field(None, ge=1)
    # CTranslate2's threads for one model pass (intra-op); None: the cores shared out among the
    # passes (1 with the default concurrency).
    cpu_threads: int | None = Field(None, ge=1)
    # The worker claims up to this many jobs at once and transcribes them together: their speech
    # packed into shared 30 s Whisper windows, the windows decoded side by side in one model pass
    # (pipeline.transcribe_batch). 1 is the one-message-per-pass path. 8 and 16 cost the same CPU
    # per message (100 messages, one pass: 79-85 s and 85-87 s); with a pass per core, 8 drained
    # in 0.89-0.99x the time of 16 over four rounds (a burst's last claims shared out more
    # evenly between the passes); a lone job is never held back.
    batch_size: int = Field(8, ge=1)
    language: str = "ar"
    # Company, product and complaint words that help Whisper spell them; Latin ones among them
    # are also kept when stray Latin words are dropped. Measured with Whisper base on the test
    # set: ten common complaint words raised CER from 0.44 to 0.54 and doubled the time, so
    # keep the list short (product names) or empty unless a larger model is configured.
    hot_words: list[str] = Field(default_factory=list)
    initial_prompt: str | None = None
    beam_size: int = Field(5, ge=1)
    # 0.25 keeps narrow-band (8 kHz) speech that the usual 0.5 was measured to drop a third of.
    vad_threshold: float = Field(0.25, gt=0, lt=1)
    word_timestamps: bool = True
    # A segment Whisper thinks is silence (no-speech probability above this) and that decoded
    # with low confidence (average log-probability below the next) is dropped as invented text.
    no_speech_threshold: float = Field(0.6, ge=0, le=1)
    log_prob_threshold: float = -1.0
    # Text that compresses better than this (zlib) is a repetition loop.
    compression_ratio_threshold: float = Field(2.4, gt=0)
    # Segments below this average log-probability, words below this probability, are "doubtful"
    # (highlighted for the agent). On the synthetic test set 88% of the words under 0.5 were wrong
    # against 64% of those above; real voices score higher than these.
    doubtful_log_prob: float = -0.8
    doubtful_word_probability: float = Field(0.5, ge=0, le=1)
    # Spoken numbers as digits in the draft ("خمسين دينار" -> "50 دينار"; transcription.numbers),
    # the words said kept beside them for the agent. False leaves Whisper's words as they are.
    numbers_as_digits: bool = True
    # Transcribe each caller's message while it is recorded (windows cut at pauses), so that the
    # draft is ready soon after the hangup (60 s messages on 2 shared cores: 2-3 s, the whole file
    # 10-13 s; bench/hangup_to_draft.py); false: the whole file after the hangup.
    stream_messages: bool = True
    # Messages followed at once: each costs about a core while the caller speaks (it is
    # transcribed again at each pause); the others are transcribed whole after the hangup.
    stream_at_once: int = Field(2, ge=1)
    # Phrases Whisper invents on silence or music, dropped from drafts (besides the built-in list).
    hallucinated_phrases: list[str] = Field(default_factory=list)
    # The job queue: a worker holds a job this long unless it renews (it does, every third);
    # a failed attempt is retried after retry_seconds, doubled each time, up to max_attempts.
    job_lease_seconds: float = Field(300.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    job_retry_seconds: float = Field(30.0, gt=0)

    def passes(self) -> int:
        """The model passes run at once (``concurrency``, or one per core)."""
        return self.concurrency or os.cpu_count() or 1

    def threads(self) -> int:
        """The CTranslate2 threads of one pass (``cpu_threads``, or the cores shared out)."""
        return self.cpu_threads or max(1, (os.cpu_count() or 1) // self.passes())

    @model_validator(mode="after")
    def _path_model_has_path(self) -> TranscriptionSettings:
        if self.model == "path" and self.model_path is None:
            raise ValueError("model 'path' needs model_path (a CTranslate2 Whisper directory)")
        return self


class TranscriptionConfig(Protocol):
    """What the transcription worker reads (hotline.app.config.Settings has it)."""

    @property
    def transcription(self) -> TranscriptionSettings: ...
