"""The benchmark's spoken clips: espeak-ng reading concatenated sentences, 5 s to 5 min."""

import wave
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.audio import encode, speak_wav

SENTENCES = (
    "The patient is a sixty two year old woman seen today for follow up of hypertension.",
    "She reports mild shortness of breath on exertion and no chest pain.",
    "Blood pressure is one hundred forty over ninety and the heart rate is regular.",
    "Lungs are clear to auscultation bilaterally with no wheezes or crackles.",
    "We will continue lisinopril and add a low dose of amlodipine.",
    "Laboratory results show a normal creatinine and a slightly raised cholesterol.",
    "The abdomen is soft and non tender and bowel sounds are present.",
    "She was advised to reduce salt intake and to walk thirty minutes a day.",
    "Return to clinic in six weeks or sooner if symptoms get worse.",
    "Plan discussed with the patient who agrees and has no further questions.",
)
WORDS_PER_S = 2.6  # espeak-ng at 150 words per minute, with its pauses


@dataclass(frozen=True)
class Clip:
    """One synthesised recording."""

    name: str
    duration_s: float
    extension: str
    data: bytes
    text: str
    """What espeak-ng was given to read (the script WER is measured against)."""


def _text_for(seconds: float) -> str:
    words_needed = seconds * WORDS_PER_S
    out: list[str] = []
    count = 0
    i = 0
    while count < words_needed:
        sentence = SENTENCES[i % len(SENTENCES)]
        out.append(sentence)
        count += len(sentence.split())
        i += 1
    return " ".join(out)


def wav_duration(path: Path) -> float:
    """Seconds of audio in a WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def make_clips(targets_s: list[float], work_dir: Path, extension: str = "m4a") -> list[Clip]:
    """Clips of about ``targets_s`` seconds each, encoded as ``extension`` (cached on disk)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, target in enumerate(targets_s):
        name = f"clip{i:02d}-{int(target)}s"
        text = _text_for(target)
        wav = work_dir / f"{name}.wav"
        if not wav.exists():
            speak_wav(text, wav)
        encoded = work_dir / f"{name}.{extension}"
        if not encoded.exists():
            encoded.write_bytes(encode(wav, extension))
        duration = round(wav_duration(wav), 2)
        clips.append(Clip(name, duration, extension, encoded.read_bytes(), text=text))
    return clips
