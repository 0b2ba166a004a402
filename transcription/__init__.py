"""Arabic drafts from call recordings with the shipped Whisper model (no network, no DB).

The edge, in faster-whisper's shape: ``transcribe(path, settings, options=...)`` returns a
``TranscriptResult``; the job worker calls ``transcribe_recording(path, settings)``. Bad audio
raises ``AudioError`` (that recording only), a missing or damaged model ``ModelError``.
"""

from casebook.arabic import normalise
from transcription.audio import AudioError, load_audio
from transcription.model import ModelError
from transcription.pipeline import transcribe, transcribe_recording
from transcription.result import Segment, Timings, TranscriptResult, Word

__all__ = [
    "AudioError",
    "ModelError",
    "Segment",
    "Timings",
    "TranscriptResult",
    "Word",
    "load_audio",
    "normalise",
    "transcribe",
    "transcribe_recording",
]
