"""What the caller says, as audio: a recorded file, or sentences spoken by the local Piper
voice, so a call needs no microphone and no cloud TTS."""

from __future__ import annotations

import asyncio
from pathlib import Path

from livekit import rtc

from agent.tools.audio_files import SAMPLE_RATE, load_wav
from plugins.audio import to_mono


async def say(sentences: list[str]) -> list[rtc.AudioFrame]:
    """Caller turns spoken by the local Piper voice, in-process: one frame per sentence."""
    from plugins.piper_tts import load_voice

    def speak(text: str) -> rtc.AudioFrame:
        voice = load_voice()
        chunks = list(voice.synthesize(text))
        if not chunks:
            raise ValueError(f"--say {text!r}: nothing to speak (give a sentence with words)")
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        frame = rtc.AudioFrame(pcm, chunks[0].sample_rate, 1, len(pcm) // 2)
        return to_mono(frame, SAMPLE_RATE)

    return [await asyncio.to_thread(speak, s) for s in sentences]


async def load_caller_audio(wav: Path | None, sentences: list[str] | None) -> list[rtc.AudioFrame]:
    """The caller's turns from ``--input`` (one turn) or else ``--say`` (one per sentence).
    Raises ``ValueError`` saying what is wrong with either."""
    if wav is not None:
        return [await load_wav(wav)]
    return await say(sentences or [])


__all__ = ["load_caller_audio", "say"]
