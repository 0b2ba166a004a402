"""Regenerate tests/data/arabic/: Arabic complaint utterances as 8 kHz telephone WAVs.

Test and demo audio only. The voices are espeak-ng driving the MBROLA Arabic diphone voices
ar1/ar2, whose licence allows non-commercial use only (see arabic/LICENSE.md); the product never
needs them. CI uses the committed WAVs, so this script only runs when the set changes:

    apt-get install espeak-ng mbrola mbrola-ar1 mbrola-ar2 sox   # contrib + non-free
    .venv/bin/python tests/data/build_arabic_set.py

Each clip: espeak-ng writes MBROLA phonemes (--pho), ``fix_phonemes`` repairs the symbols the
voices lack, mbrola renders 16 kHz speech, then sox adds a faint line hiss, band-limits to the
telephone band (300-3400 Hz), resamples to 8 kHz and round-trips through G.711 mu-law, the way an
Asterisk recording of a phone caller sounds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

# The phoneme repair lives with the product's prompt renderer; the test audio uses the same one.
from ivr_flows.tts import MBROLA_VOICES, MISSING_DIPHONE, fix_phonemes

OUT = Path(__file__).resolve().parent / "arabic"
# (text, voice, words per minute, demo). Telecom/ISP complaints as a Libyan caller would phrase
# them; "demo" marks clean, complete complaints the PBX simulator can play as caller audio.
SENTENCES: list[tuple[str, str, int, bool]] = [
    ("السلام عليكم، عندي مشكلة في الإنترنت منذ ثلاثة أيام والخدمة مقطوعة تماما", "ar1", 140, True),
    ("الفاتورة هذا الشهر أعلى من المعتاد بكثير ولم أستخدم الإنترنت أكثر من قبل", "ar2", 140, True),
    ("الإنترنت بطيء جدا في المساء ولا أستطيع فتح أي صفحة", "ar1", 150, True),
    ("دفعت الاشتراك في الفرع لكن الخدمة لم تفعل حتى الآن", "ar2", 150, False),
    ("اتصلت بالدعم الفني أكثر من مرة ولم يرد علي أحد", "ar1", 145, True),
    ("الموظف في فرع طرابلس تعامل معي بطريقة غير محترمة", "ar2", 140, True),
    ("أريد إلغاء الاشتراك واسترجاع المبلغ المدفوع", "ar1", 150, False),
    ("الراوتر الذي استلمته من الشركة لا يعمل منذ أول يوم", "ar2", 145, False),
    ("تم خصم مبلغ من رصيدي بدون أي سبب واضح", "ar1", 140, False),
    ("الانقطاع يتكرر كل يوم في منطقتنا في بنغازي", "ar2", 150, True),
    ("البريد الإلكتروني الخاص بشركتي متوقف منذ يوم أمس", "ar1", 145, False),
    ("الموقع الإلكتروني لا يفتح وأعتقد أن الاستضافة معطلة", "ar2", 140, False),
    ("طلبت زيارة فني إلى البيت ولم يحضر أحد في الموعد", "ar1", 150, False),
    ("السرعة التي أحصل عليها أقل بكثير من الباقة التي أدفع ثمنها", "ar2", 145, False),
    ("نبي نعرف متى ترجع الخدمة لأن شغلي كله على الإنترنت", "ar1", 140, False),
    ("سجلت شكوى الأسبوع الماضي ولم يتصل بي أحد حتى الآن", "ar2", 150, True),
    ("أرجو تحويل شكواي إلى المدير المسؤول", "ar1", 145, False),
    ("الفاتورة فيها رسوم إضافية لم أطلبها", "ar2", 140, False),
    ("جددت الباقة لكن الرصيد لم يظهر في حسابي", "ar1", 150, False),
    ("الخدمة ممتازة في الصباح لكنها تنقطع كل ليلة", "ar2", 145, False),
    ("موظف خدمة العملاء أغلق الخط في وجهي", "ar1", 140, False),
    ("أريد تغيير الباقة إلى سرعة أعلى لكن الطلب مرفوض", "ar2", 150, False),
    ("النطاق الخاص بموقعي انتهى رغم أنني دفعت التجديد", "ar1", 145, False),
    ("الإشارة ضعيفة جدا داخل المنزل في مصراتة", "ar2", 140, False),
    ("لا أستطيع الدخول إلى حسابي في موقع الشركة", "ar1", 150, False),
    ("انتظرت على الخط نصف ساعة قبل أن يرد الموظف", "ar2", 145, False),
    ("أطلب تعويضا عن أيام الانقطاع الماضية", "ar1", 140, False),
    ("الخدمة في سبها ضعيفة منذ شهر كامل", "ar2", 150, False),
    ("الفني قال إن المشكلة من الشركة وليست من عندي", "ar1", 145, False),
    ("رقم الشكوى السابقة لا يظهر عند الاستعلام", "ar2", 140, False),
    ("أريد أن أعرف سبب رفع سعر الاشتراك بدون إشعار", "ar1", 150, False),
    ("الاتصال ينقطع كلما استخدمت الهاتف والإنترنت معا", "ar2", 145, False),
    ("شكرا لكم، أتمنى أن تحل المشكلة في أقرب وقت", "ar1", 140, False),
    ("الموظفة في الفرع كانت متعاونة لكن المشكلة لم تحل", "ar2", 150, False),
    ("الإنترنت مفصول رغم أنني دفعت الفاتورة في موعدها", "ar1", 145, True),
    ("من فضلكم أرسلوا فنيا لفحص الخط في الزاوية", "ar2", 140, False),
]

# Non-speech clips: (id, sox synth arguments, seconds). The pipeline must call these "no speech".
NON_SPEECH: list[tuple[str, list[str], float]] = [
    # A quiet line: the caller said nothing, only the faint hiss of the connection.
    ("silence", ["pinknoise", "vol", "0.002"], 8.0),
    # A loud, hissing line with nobody speaking.
    ("noise", ["whitenoise", "vol", "0.25"], 8.0),
    # Hold music: a plucked arpeggio.
    ("music", ["pluck", "%-12", "pluck", "%-5", "pluck", "%0", "tremolo", "3", "40"], 8.0),
]


@dataclass(frozen=True)
class Clip:
    id: str
    file: str
    text: str
    kind: str  # "speech", "silence", "noise", "music" or "corrupt"
    voice: str
    duration: float
    demo: bool


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)


def speak(text: str, voice: str, wpm: int, wav16k: Path) -> None:
    """espeak-ng -> fixed phonemes -> mbrola, repairing missing diphones until mbrola accepts."""
    espeak = run(["espeak-ng", "-q", "-v", f"mb-{voice}", "-s", str(wpm), "--pho", text])
    if espeak.returncode != 0 or not espeak.stdout.strip():
        sys.exit(f"espeak-ng failed for {text!r}: {espeak.stderr.strip()}")
    repairs: dict[tuple[str, str], str] = {}
    while True:
        pho = fix_phonemes(espeak.stdout, repairs)
        result = run(["mbrola", str(MBROLA_VOICES / voice / voice), "-", str(wav16k)], stdin=pho)
        found = MISSING_DIPHONE.search(result.stderr)
        if result.returncode == 0 and not found:
            return
        missing = (found[1], found[2]) if found else None
        if missing is None or repairs.get(missing) == "drop":
            sys.exit(f"mbrola failed for {text!r}: {result.stderr.strip()}")
        bridged = [
            pair
            for pair, how in repairs.items()
            if how == "bridge" and missing[0] == "_" and pair[1] == missing[1]
        ]
        for pair in bridged:
            repairs[pair] = "drop"
        if not bridged:
            repairs[missing] = "drop" if missing in repairs or missing[0] == "_" else "bridge"


def telephone(source: list[str], target: Path, seconds: float | None = None) -> None:
    """Mix in line hiss, band-limit, 8 kHz G.711 mu-law round trip, 16-bit PCM WAV out.

    ``source`` is a speech WAV (padded like a recording that starts and stops a little around
    the voice), or sox synth arguments for a non-speech clip of ``seconds``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        hiss, ulaw = Path(tmp) / "hiss.wav", Path(tmp) / "ulaw.wav"
        length = seconds if seconds is not None else duration(Path(source[0])) + 0.9
        if seconds is None:
            content = f"|sox {source[0]} -p rate 16000 gain -n -4 pad 0.4 0.5"
        else:
            content = f"|sox -R -n -r 16000 -c 1 -p synth {seconds} {' '.join(source)}"
        steps = [
            f"sox -R -n -r 16000 -c 1 {hiss} synth {length:.2f} pinknoise vol 0.003".split(),
            ["sox", "-R", "-m", str(hiss), content,
             *f"-r 8000 -e u-law -b 8 {ulaw} sinc 300-3400 rate 8000".split()],
            f"sox {ulaw} -e signed-integer -b 16 {target}".split(),
        ]  # fmt: skip
        for step in steps:
            result = run(step)
            if result.returncode != 0:
                sys.exit(f"sox failed: {' '.join(step)}: {result.stderr.strip()}")


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def corrupt_wav(good: Path, target: Path) -> None:
    """A RIFF/WAVE file whose fmt chunk was overwritten with zeros (0 channels, 0 Hz)."""
    data = bytearray(good.read_bytes()[:4000])
    data[20:36] = bytes(16)
    target.write_bytes(bytes(data))


# Asterisk's other recording formats, for the decoder tests: file name -> sox output options.
FORMATS = {
    "ulaw.wav": ["-e", "u-law"],
    "alaw.wav": ["-e", "a-law"],
    "gsm.wav": ["-e", "gsm-full-rate"],  # Asterisk's "wav49"
    "clip.gsm": ["-t", "gsm"],
    "clip.ulaw": ["-t", "ul"],
}


def other_formats(source: Path) -> None:
    """The first two seconds of a clip in each format in FORMATS, under arabic/formats/."""
    folder = OUT / "formats"
    folder.mkdir(exist_ok=True)
    for name, options in FORMATS.items():
        step = ["sox", str(source), *options, str(folder / name), "trim", "0", "2"]
        result = run(step)
        if result.returncode != 0:
            sys.exit(f"sox failed: {' '.join(step)}: {result.stderr.strip()}")


def build() -> list[Clip]:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.wav"), *OUT.glob("formats/*")]:
        old.unlink()
    clips: list[Clip] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, (text, voice, wpm, demo) in enumerate(SENTENCES, start=1):
            clip_id = f"ar{number:02d}"
            raw = Path(tmp) / f"{clip_id}.wav"
            speak(text, voice, wpm, raw)
            target = OUT / f"{clip_id}.wav"
            telephone([str(raw)], target)
            clips.append(
                Clip(
                    clip_id, target.name, text, "speech", f"mbrola-{voice}", duration(target), demo
                )
            )
    for clip_id, synth, seconds in NON_SPEECH:
        target = OUT / f"{clip_id}.wav"
        telephone(synth, target, seconds)
        clips.append(Clip(clip_id, target.name, "", clip_id, "", duration(target), False))
    corrupt = OUT / "corrupt.wav"
    corrupt_wav(OUT / "ar01.wav", corrupt)
    other_formats(OUT / "ar03.wav")
    clips.append(Clip("corrupt", corrupt.name, "", "corrupt", "", 0.0, False))
    return clips


def main() -> None:
    clips = build()
    manifest = [{**clip.__dict__, "duration": round(clip.duration, 3)} for clip in clips]
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    speech = [clip for clip in clips if clip.kind == "speech"]
    total = sum(clip.duration for clip in speech)
    print(f"{len(speech)} utterances, {total:.1f} s of speech, {len(clips) - len(speech)} others")


if __name__ == "__main__":
    main()
