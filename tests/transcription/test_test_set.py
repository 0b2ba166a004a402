"""The committed Arabic test set (tests/data/arabic) is consistent: what the bench and the demo
read from its manifest matches the files and itself."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.transcription.conftest import ARABIC, manifest
from transcription.audio import AudioError, load_audio

SPEECH = [clip for clip in manifest() if clip["kind"] == "speech"]


def test_every_clip_is_listed_once_and_every_listed_file_exists() -> None:
    clips = manifest()
    assert len({clip["id"] for clip in clips}) == len(clips)
    assert {clip["file"] for clip in clips} == {path.name for path in ARABIC.glob("*.wav")}


@pytest.mark.parametrize("clip", manifest(), ids=lambda clip: clip["id"])
def test_every_wav_is_8khz_telephone_audio_of_the_listed_length(clip: dict[str, object]) -> None:
    if clip["kind"] == "corrupt":
        with pytest.raises(AudioError, match="corrupt"):
            load_audio(ARABIC / str(clip["file"]))
        return
    audio = load_audio(ARABIC / str(clip["file"]))
    assert audio.source_rate == 8000
    assert audio.codec in ("pcm_s16le", "pcm_mulaw")
    assert audio.duration == pytest.approx(clip["duration"], abs=0.01)


@pytest.mark.parametrize("clip", SPEECH, ids=lambda clip: clip["id"])
def test_both_forms_are_there_and_the_numbers_are_the_typed_forms_digits(
    clip: dict[str, object],
) -> None:
    spoken, typed, numbers = str(clip["text"]), str(clip["typed"]), clip["numbers"]
    assert spoken.strip() and typed.strip()
    assert not re.search(r"[0-9٠-٩]", spoken), "the spoken form says numbers as words"
    assert numbers == re.findall(r"[0-9]+", typed)
    if not numbers:
        assert typed == spoken
    assert clip["split"] in ("tune", "heldout")
    assert clip["voice"] in ("mbrola-ar1", "mbrola-ar2")


def test_the_heldout_half_is_half_of_each_kind_and_has_both_voices() -> None:
    for kind in (True, False):  # with numbers, without
        clips = [clip for clip in SPEECH if bool(clip["numbers"]) is kind]
        splits = Counter(clip["split"] for clip in clips)
        assert abs(splits["tune"] - splits["heldout"]) <= 1, (kind, splits)
        for split in ("tune", "heldout"):
            voices = Counter(clip["voice"] for clip in clips if clip["split"] == split)
            assert min(voices.values()) >= len(clips) // 5, (kind, split, voices)
            assert len(voices) == 2


def test_non_speech_clips_have_no_text_and_no_split() -> None:
    others = [clip for clip in manifest() if clip["kind"] != "speech"]
    assert {clip["kind"] for clip in others} == {"silence", "noise", "music", "corrupt"}
    for clip in others:
        assert (clip["text"], clip["typed"], clip["numbers"], clip["split"]) == ("", "", [], None)


def test_demo_clips_are_pcm_wavs_the_simulator_can_play() -> None:
    demo = [clip for clip in SPEECH if clip["demo"]]
    assert len(demo) >= 5
    for clip in demo:
        assert load_audio(ARABIC / clip["file"]).codec == "pcm_s16le"  # the wave module's
