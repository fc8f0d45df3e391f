"""Audio helpers shared by tests and benchmarks: Piper speech to feed STTs, timed TTS
synthesis, and word error rate."""

from __future__ import annotations

import re
import time
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, tts

from plugins.piper_tts import load_voice


def piper_speech(sentences: Sequence[str], *, pause_s: float, seed: int = 0) -> tuple[bytes, int]:
    """16-bit mono PCM of the sentences spoken by the default Piper voice (loaded once per
    process), each followed by ``pause_s`` of faint noise, and its sample rate.

    Piper's own noise is off so the audio is the same every run. The pauses are noise, not
    digital zeros: on exact zeros Kaldi's features depend on its dither, whose random state
    all recognizers of a process share, and Vosk's text then changes from run to run."""
    from piper import SynthesisConfig

    voice = load_voice()
    cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    rate = voice.config.sample_rate
    rng = np.random.default_rng(seed)
    parts: list[bytes] = []
    for sentence in sentences:
        parts.extend(c.audio_int16_bytes for c in voice.synthesize(sentence, syn_config=cfg))
        parts.append(rng.normal(0.0, 20.0, int(rate * pause_s)).astype(np.int16).tobytes())
    return b"".join(parts), rate


def speech_frames(sentences: Sequence[str], *, pause_s: float) -> list[rtc.AudioFrame]:
    """``piper_speech`` as 20 ms frames at Piper's native rate."""
    pcm, rate = piper_speech(sentences, pause_s=pause_s)
    step = rate // 50 * 2
    return [
        rtc.AudioFrame(pcm[i : i + step], rate, 1, step // 2)
        for i in range(0, len(pcm) - step + 1, step)
    ]


async def synthesize_timed(
    engine: tts.TTS, text: str, conn_options: APIConnectOptions
) -> tuple[float, float, list[rtc.AudioFrame]]:
    """Seconds to the first frame, seconds to the end, and the frames."""
    started = time.perf_counter()
    first = -1.0
    frames: list[rtc.AudioFrame] = []
    async with engine.synthesize(text, conn_options=conn_options) as stream:
        async for ev in stream:
            if first < 0:
                first = time.perf_counter() - started
            frames.append(ev.frame)
    return first, time.perf_counter() - started, frames


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length, ignoring case/punctuation."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


def read_stereo(path: Path) -> tuple[int, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    with wave.open(str(path)) as f:
        assert f.getnchannels() == 2
        rate = f.getframerate()
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).reshape(-1, 2)
    return rate, pcm[:, 0].copy(), pcm[:, 1].copy()


def rms(pcm: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def transcribe(pcm: np.ndarray, rate: int) -> str:  # type: ignore[type-arg]
    from plugins import whisper_stt
    from plugins.audio import to_mono

    frame = to_mono(rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm)), 16000)
    audio = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    segments, _ = whisper_stt.load_model().transcribe(audio, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments)
