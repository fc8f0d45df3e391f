"""The caller's first phoneme reaches a non-streaming STT, with the worker's own VAD.

The VAD declares speech only after ``min_speech_duration`` of it, so an STT that got audio
from that moment on would hear every utterance with its first sound cut ("What are…" as
"Well, …"). livekit's Silero VAD keeps ``prefix_padding_duration`` of audio before its
start of speech; both ways the chains hand speech to such an STT (early decode, livekit's
``StreamAdapter``) must pass that pad on. Streaming STTs get every frame the caller sends."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from agent.worker.prewarm import shared_vad
from plugins import whisper_stt
from providers.chains.stt.early_decode import EarlyDecodeAdapter
from tests.support.audio import piper_speech

pytestmark = pytest.mark.slow
TIMEOUT = 60
PAD = 0.2
"""Seconds of audio before the first phoneme the STT must get, at least."""
ONSET_LEVEL = 500
"""An int16 amplitude no faint background reaches and every spoken word does."""


def _caller() -> tuple[np.ndarray, int]:
    """A second of faint noise, then the question: where speech starts is known exactly,
    and the noise makes each stretch of the audio findable in what the STT received."""
    lead, rate = piper_speech([""], pause_s=1.0, seed=1)
    speech, _ = piper_speech(["What are your opening hours?"], pause_s=1.5, seed=2)
    return np.frombuffer(lead + speech, dtype=np.int16), rate


def _frames(pcm: np.ndarray, rate: int) -> list[rtc.AudioFrame]:
    step = rate // 50
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), rate, 1, step)
        for i in range(0, len(pcm) - step + 1, step)
    ]


def _make(kind: str, whisper: stt.STT) -> stt.STT:
    vad = shared_vad()
    if kind == "early decode":
        return EarlyDecodeAdapter(stt=whisper, vad=vad, after_silence=0.12, join_pauses=0.0)
    return stt.StreamAdapter(stt=whisper, vad=vad)


@pytest.mark.parametrize("kind", ["early decode", "livekit StreamAdapter"])
async def test_the_stt_gets_the_audio_before_the_first_phoneme(kind: str) -> None:
    pcm, rate = _caller()
    onset = int(np.argmax(np.abs(pcm) > ONSET_LEVEL))
    whisper = whisper_stt.STT()
    received: list[np.ndarray] = []
    real = whisper.recognize

    async def recognize(*args: Any, buffer: Any, **kwargs: Any) -> stt.SpeechEvent:
        received.append(np.frombuffer(rtc.combine_audio_frames(buffer).data, dtype=np.int16))
        return await real(*args, buffer=buffer, **kwargs)

    whisper.recognize = recognize  # type: ignore[method-assign]
    stream = _make(kind, whisper).stream()
    finals: list[str] = []

    async def feed() -> None:
        for frame in _frames(pcm, rate):
            stream.push_frame(frame)
            await asyncio.sleep(0)
        stream.end_input()

    async def read() -> None:
        async for event in stream:
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                finals.append(event.alternatives[0].text)

    await asyncio.wait_for(asyncio.gather(feed(), read()), TIMEOUT)
    await stream.aclose()

    assert received, "the STT was never asked to decode"
    audio = received[-1]
    probe = audio[:64].tobytes()
    start = pcm.tobytes().find(probe) // 2
    assert start >= 0, "what the STT got does not start with the caller's audio"
    assert start <= onset - PAD * rate, (
        f"the STT's audio starts {(start - onset) / rate * 1000:+.0f} ms from the first phoneme"
    )
    assert start + len(audio) > onset + rate, "the STT's audio must hold the speech itself"
    assert "what" in " ".join(finals).lower(), finals
