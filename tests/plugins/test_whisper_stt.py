"""faster-whisper STT: audio conversion, error ladder, and a Piper → Whisper round trip."""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, stt

from plugins import piper_tts, whisper_stt
from tests.support.audio import word_error_rate

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I would like a cup of coffee with milk.",
    "Please call me back tomorrow morning.",
]
NO_RETRY = APIConnectOptions(max_retry=0, timeout=30.0)


def test_word_error_rate() -> None:
    assert word_error_rate("Hello, World!", "hello world") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5


def _sine(rate: int, channels: int, seconds: float) -> rtc.AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    pcm = np.repeat(mono, channels)  # interleaved
    return rtc.AudioFrame(pcm.tobytes(), rate, channels, len(mono))


def test_audio_becomes_16k_mono_float() -> None:
    audio = whisper_stt._to_whisper_input(_sine(48000, 2, 1.0))
    assert audio.dtype == np.float32
    assert abs(len(audio) - 16000) <= 160
    assert 0.4 < float(np.max(np.abs(audio))) <= 1.0
    same = whisper_stt._to_whisper_input(_sine(16000, 1, 0.5))
    assert len(same) == 8000


def test_constructor_does_not_load_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("model loaded in constructor")

    monkeypatch.setattr(whisper_stt, "load_model", boom)
    engine = whisper_stt.STT()
    assert not engine.capabilities.streaming
    assert not engine.capabilities.interim_results


def test_default_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_MODEL", "base.en")
    assert whisper_stt.default_model() == "base.en"
    monkeypatch.delenv("WHISPER_MODEL")
    assert (pathlib.Path(whisper_stt.default_model()) / "model.bin").exists()


async def test_failure_is_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model file corrupt")

    monkeypatch.setattr(whisper_stt, "_models", {})  # not loaded yet: the STT loads it
    monkeypatch.setattr(whisper_stt, "_load", broken)
    with pytest.raises(APIConnectionError):
        await asyncio.wait_for(
            whisper_stt.STT().recognize(_sine(16000, 1, 0.5), conn_options=NO_RETRY), 10
        )


async def test_empty_buffer_is_empty_transcript() -> None:
    event = await asyncio.wait_for(whisper_stt.STT().recognize([], conn_options=NO_RETRY), 10)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert event.alternatives[0].text == ""


@pytest.mark.slow
def test_load_model_is_cached() -> None:
    assert whisper_stt.load_model() is whisper_stt.load_model()
    assert whisper_stt.load_model(whisper_stt.default_model()) is whisper_stt.load_model()


@pytest.mark.slow
async def test_piper_to_whisper_round_trip() -> None:
    text = " ".join(SENTENCES)
    await asyncio.gather(
        asyncio.to_thread(piper_tts.load_voice), asyncio.to_thread(whisper_stt.load_model)
    )

    async def round_trip() -> stt.SpeechEvent:
        speech = await piper_tts.TTS().synthesize(text, conn_options=NO_RETRY).collect()
        assert speech.sample_rate == 22050  # exercises the resampling to 16 kHz
        return await whisper_stt.STT().recognize(speech, conn_options=NO_RETRY)

    event = await asyncio.wait_for(round_trip(), 60)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    transcript = event.alternatives[0]
    assert transcript.language == "en"
    assert word_error_rate(text, transcript.text) <= 0.2, transcript.text


def test_the_encoder_sees_the_utterance_not_thirty_seconds() -> None:
    assert whisper_stt.context_frames(0.4) == 300  # at least MIN_CONTEXT
    assert whisper_stt.context_frames(2.4) == 400  # 2.4 s and 1 s of margin, whole seconds
    assert whisper_stt.context_frames(28.5) == 3000  # never past Whisper's window


@pytest.mark.slow
async def test_concurrent_decodes_share_the_decoders_and_a_cancelled_one_never_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decode waits for a decoder in the model's own pool: cancelled while waiting (the
    caller talked through it), it never reaches the model."""
    started: list[int] = []
    real = whisper_stt._transcribe

    def counting(model: Any, opts: Any, audio: Any) -> Any:
        started.append(len(audio))
        return real(model, opts, audio)

    monkeypatch.setattr(whisper_stt, "_transcribe", counting)
    loaded = await asyncio.to_thread(whisper_stt._load, None, "int8", None)
    busy = [loaded.decoders.submit(time.sleep, 1.0) for _ in range(whisper_stt.default_decoders())]
    stt_ = whisper_stt.STT()
    stale = asyncio.ensure_future(stt_.recognize(_sine(16000, 1, 0.7), conn_options=NO_RETRY))
    await asyncio.sleep(0.2)  # queued behind the busy decoders
    stale.cancel()
    kept = await asyncio.wait_for(stt_.recognize(_sine(16000, 1, 0.5), conn_options=NO_RETRY), 30)
    for f in busy:
        f.result(timeout=5)
    assert kept.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert started == [8000]  # only the kept one (0.5 s at 16 kHz) was decoded
