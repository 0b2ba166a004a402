"""Arabic drafts from call recordings with the shipped Whisper model (no network, no DB).

The edge, in faster-whisper's shape: ``transcribe(path, settings, options=...)`` returns a
``TranscriptResult`` (spoken numbers as digits, the words said in ``numbers``);
``transcribe_recording(path, settings)`` is one recording with the operator's settings, and the
job worker calls ``transcribe_batch(paths, settings)`` (several in shared model passes, a bad
recording's ``AudioError`` in its place). Bad audio raises ``AudioError`` (that recording only), a
missing or damaged model ``ModelError``.
"""

from casebook.arabic import normalise
from transcription.audio import AudioError, load_audio
from transcription.model import ModelError
from transcription.numbers import SpokenNumber, numbers_to_digits
from transcription.pipeline import transcribe, transcribe_batch, transcribe_recording
from transcription.result import Segment, Timings, TranscriptResult, Word

__all__ = [
    "AudioError",
    "ModelError",
    "Segment",
    "SpokenNumber",
    "Timings",
    "TranscriptResult",
    "Word",
    "load_audio",
    "normalise",
    "numbers_to_digits",
    "transcribe",
    "transcribe_batch",
    "transcribe_recording",
]
