"""Regenerate tests/data/arabic/: Arabic complaint utterances as 8 kHz telephone WAVs.

Test and demo audio only. The voices are espeak-ng driving the MBROLA Arabic diphone voices
ar1/ar2, whose licence allows non-commercial use only (see arabic/LICENSE.md); the product never
needs them. CI uses the committed WAVs, so this script only runs when the set changes:

    apt-get install espeak-ng mbrola mbrola-ar1 mbrola-ar2 sox   # contrib + non-free
    .venv/bin/python tests/data/build_arabic_set.py

Each clip: espeak-ng writes MBROLA phonemes (--pho), ``fix_phonemes`` repairs the symbols the
voices lack, mbrola renders 16 kHz speech, then sox adds a faint line hiss, band-limits to the
telephone band (300-3400 Hz), resamples to 8 kHz and round-trips through G.711 mu-law, the way an
Asterisk recording of a phone caller sounds. The complaints without numbers are stored as 16-bit
PCM WAVs (the demo's PBX simulator plays them); those with numbers stay G.711 mu-law WAVs, half
the size and the same samples.

The manifest gives each utterance its text twice: ``text`` as spoken (numbers as words, what the
voice says) and ``typed`` as an agent types it (numbers as digits), with ``numbers``, the digit
strings said, in order. A number an agent would leave as a word ("منذ ثلاثة أيام") stays a word
in both. ``split`` is "tune" or "heldout": the held-out half is for reporting only, never for
choosing a setting or a rule of transcription/numbers.py. It is fixed by position (see SPLIT).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
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

# Number-bearing complaints: (as spoken, as an agent types it, voice, words per minute). Libyan
# mobile numbers (091/092/094) and a Tripoli landline said digit by digit or partly in pairs,
# account, subscription, invoice and order numbers, amounts in dinars and dirhams, dates.
NUMBER_SENTENCES: list[tuple[str, str, str, int]] = [
    ("رقم هاتفي صفر تسعة واحد اثنان ثلاثة أربعة خمسة ستة سبعة ثمانية والخط مقطوع منذ أمس",
     "رقم هاتفي 0912345678 والخط مقطوع منذ أمس", "ar1", 135),
    ("اتصلوا بي على الرقم صفر تسعة اثنان خمسة خمسة سبعة ثلاثة واحد صفر أربعة",
     "اتصلوا بي على الرقم 0925573104", "ar2", 135),
    ("الخط رقم صفر تسعة أربعة ثمانية واحد ستة اثنان تسعة ثلاثة سبعة لا يستقبل المكالمات",
     "الخط رقم 0948162937 لا يستقبل المكالمات", "ar1", 140),
    ("رقمي زيرو تسعة واحد سبعة سبعة أربعة اثنان صفر ستة خمسة والإنترنت فيه لا يعمل",
     "رقمي 0917742065 والإنترنت فيه لا يعمل", "ar2", 140),
    ("رقم الهاتف صفر تسعة اثنان خمسة اثنا عشر أربعة وثلاثين سبعة وستين",
     "رقم الهاتف 0925123467", "ar1", 135),
    ("رقم أخي صفر تسعة أربعة ثلاثة واحد وعشرين ستة وأربعين تسعة وثمانين",
     "رقم أخي 0943214689", "ar2", 135),
    ("أرجو الاتصال على صفر تسعة واحد ستة ستة ثمانية ثلاثة أربعة اثنان تسعة بعد الساعة الخامسة",
     "أرجو الاتصال على 0916683429 بعد الساعة الخامسة", "ar1", 140),
    ("رقم الخط الأرضي صفر اثنان واحد ثلاثة ستة اثنان أربعة ثمانية صفر صفر في طرابلس",
     "رقم الخط الأرضي 0213624800 في طرابلس", "ar2", 140),
    ("الرسائل لا تصل إلى الرقم صفر تسعة اثنان ثمانية ثمانية واحد خمسة سبعة ثلاثة صفر",
     "الرسائل لا تصل إلى الرقم 0928815730", "ar1", 140),
    ("شحنت الرصيد للرقم صفر تسعة أربعة خمسة صفر تسعة سبعة ستة واحد اثنان ولم يصل",
     "شحنت الرصيد للرقم 0945097612 ولم يصل", "ar2", 135),
    ("رقم حسابي سبعة ثلاثة ثمانية صفر اثنان واحد ستة",
     "رقم حسابي 7380216", "ar2", 135),
    ("رقم الاشتراك أربعة أربعة صفر تسعة ثلاثة خمسة والخدمة لم تفعل",
     "رقم الاشتراك 440935 والخدمة لم تفعل", "ar1", 140),
    ("رقم الفاتورة تسعة واحد ستة ثمانية اثنان ثلاثة والمبلغ فيها خطأ",
     "رقم الفاتورة 916823 والمبلغ فيها خطأ", "ar2", 140),
    ("الفاتورة رقم ثلاثة آلاف ومئتين وخمسة عشر لم تصلني",
     "الفاتورة رقم 3215 لم تصلني", "ar1", 140),
    ("رقم الطلب ستة صفر صفر أربعة اثنان ثمانية ولم يرد أحد",
     "رقم الطلب 600428 ولم يرد أحد", "ar2", 140),
    ("رقم الشكوى السابقة خمسة اثنان سبعة تسعة واحد",
     "رقم الشكوى السابقة 52791", "ar1", 135),
    ("رقم العقد ثمانية ثلاثة واحد اثنان صفر خمسة تسعة والاسم مكتوب خطأ",
     "رقم العقد 8312059 والاسم مكتوب خطأ", "ar2", 140),
    ("الراوتر رقمه التسلسلي أربعة سبعة اثنان ثمانية ستة ثلاثة صفر واحد",
     "الراوتر رقمه التسلسلي 47286301", "ar1", 135),
    ("دفعت خمسين دينار في الفرع ولم يتغير شيء",
     "دفعت 50 دينار في الفرع ولم يتغير شيء", "ar2", 145),
    ("الفاتورة جاءت بمبلغ مئتين وخمسين دينار وهذا كثير",
     "الفاتورة جاءت بمبلغ 250 دينار وهذا كثير", "ar1", 145),
    ("خصموا من رصيدي عشرة دنانير بدون سبب",
     "خصموا من رصيدي 10 دنانير بدون سبب", "ar2", 145),
    ("سعر الباقة صار خمسة وسبعين دينار بدل ستين دينار",
     "سعر الباقة صار 75 دينار بدل 60 دينار", "ar1", 145),
    ("بقي في رصيدي ثلاثة دنانير وخمسمائة درهم فقط",
     "بقي في رصيدي 3 دنانير و500 درهم فقط", "ar2", 145),
    ("طلبوا مني ألف وخمسمائة دينار لتركيب الخط",
     "طلبوا مني 1500 دينار لتركيب الخط", "ar1", 145),
    ("دفعت مئة وعشرين دينار للتجديد والباقة لم تتجدد",
     "دفعت 120 دينار للتجديد والباقة لم تتجدد", "ar2", 145),
    ("الشركة ردت لي خمسة وعشرين دينار فقط من أصل مئة دينار",
     "الشركة ردت لي 25 دينار فقط من أصل 100 دينار", "ar1", 145),
    ("دفعت الفاتورة يوم خمسة عشر نوفمبر ولم يسجل الدفع",
     "دفعت الفاتورة يوم 15 نوفمبر ولم يسجل الدفع", "ar2", 145),
    ("الخدمة مقطوعة من يوم ثلاثة وعشرين أكتوبر",
     "الخدمة مقطوعة من يوم 23 أكتوبر", "ar1", 145),
    ("انتهى الاشتراك في واحد وثلاثين ديسمبر ألفين وخمسة وعشرين رغم التجديد",
     "انتهى الاشتراك في 31 ديسمبر 2025 رغم التجديد", "ar2", 145),
    ("قالوا إن الخدمة ترجع خلال ثمانية وأربعين ساعة ومر أسبوع",
     "قالوا إن الخدمة ترجع خلال 48 ساعة ومر أسبوع", "ar1", 145),
    ("موعد الفني كان يوم عشرين الشهر الماضي ولم يحضر",
     "موعد الفني كان يوم 20 الشهر الماضي ولم يحضر", "ar2", 145),
    ("سجلت الشكوى يوم اثنا عشر سبتمبر ألفين وستة وعشرين",
     "سجلت الشكوى يوم 12 سبتمبر 2026", "ar1", 145),
]  # fmt: skip

SPLITS = ("tune", "heldout")


def split(position: int) -> str:
    """The utterance at ``position`` (0-based, in manifest order) is tuned on or held out.

    tune, heldout, heldout, tune, repeating: half of each, and since the voices alternate
    ar1/ar2 along both lists, each half has both voices and every kind of number.
    """
    return SPLITS[position % 4 in (1, 2)]


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
    text: str  # as spoken: numbers as words
    kind: str  # "speech", "silence", "noise", "music" or "corrupt"
    voice: str
    duration: float
    demo: bool
    typed: str = ""  # as an agent types it: numbers as digits
    numbers: tuple[str, ...] = ()  # the digit strings of ``typed``, in order
    split: str | None = None  # "tune" or "heldout" for speech


def digit_strings(typed: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[0-9]+", typed))


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


def telephone(
    source: list[str], target: Path, seconds: float | None = None, mu_law: bool = False
) -> None:
    """Mix in line hiss, band-limit, 8 kHz G.711 mu-law round trip, 16-bit PCM WAV out (or the
    mu-law WAV itself with ``mu_law``).

    ``source`` is a speech WAV (padded like a recording that starts and stops a little around
    the voice), or sox synth arguments for a non-speech clip of ``seconds``.
    """
    encoding = "-e u-law -b 8" if mu_law else "-e signed-integer -b 16"
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
            f"sox {ulaw} {encoding} {target}".split(),
        ]  # fmt: skip
        for step in steps:
            result = run(step)
            if result.returncode != 0:
                sys.exit(f"sox failed: {' '.join(step)}: {result.stderr.strip()}")


def duration(path: Path) -> float:
    soxi = run(["soxi", "-D", str(path)])  # the wave module reads no mu-law WAV
    if soxi.returncode != 0:
        sys.exit(f"soxi failed on {path}: {soxi.stderr.strip()}")
    return float(soxi.stdout)


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
    utterances = [
        *((text, text, voice, wpm, demo) for text, voice, wpm, demo in SENTENCES),
        *((said, typed, voice, wpm, False) for said, typed, voice, wpm in NUMBER_SENTENCES),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for position, (said, typed, voice, wpm, demo) in enumerate(utterances):
            clip_id = f"ar{position + 1:02d}"
            raw = Path(tmp) / f"{clip_id}.wav"
            speak(said, voice, wpm, raw)
            target = OUT / f"{clip_id}.wav"
            numbers = digit_strings(typed)
            telephone([str(raw)], target, mu_law=bool(numbers))
            clips.append(
                Clip(
                    clip_id,
                    target.name,
                    said,
                    "speech",
                    f"mbrola-{voice}",
                    duration(target),
                    demo,
                    typed,
                    numbers,
                    split(position),
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
    manifest = [
        {**clip.__dict__, "numbers": list(clip.numbers), "duration": round(clip.duration, 3)}
        for clip in clips
    ]
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    speech = [clip for clip in clips if clip.kind == "speech"]
    total = sum(clip.duration for clip in speech)
    with_numbers = sum(1 for clip in speech if clip.numbers)
    print(
        f"{len(speech)} utterances ({with_numbers} with numbers), {total:.1f} s of speech, "
        f"{len(clips) - len(speech)} others"
    )


if __name__ == "__main__":
    main()
