"""plugins.audio: the one downmix + resample helper (Vosk, Whisper and the simulator use it)."""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc

from plugins.audio import MonoResampler, downmix, to_mono


def _stereo(rate: int, samples: int, left: int, right: int) -> rtc.AudioFrame:
    pcm = np.empty((samples, 2), dtype=np.int16)
    pcm[:, 0], pcm[:, 1] = left, right
    return rtc.AudioFrame(pcm.tobytes(), rate, 2, samples)


def _sine(rate: int, seconds: float) -> rtc.AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    pcm = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    return rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))


def _samples(frame: rtc.AudioFrame) -> np.ndarray:  # type: ignore[type-arg]
    return np.frombuffer(frame.data, dtype=np.int16)


def test_downmix_averages_the_channels() -> None:
    mono = downmix(_stereo(48000, 480, 1000, 3000))
    assert (mono.num_channels, mono.sample_rate, mono.samples_per_channel) == (1, 48000, 480)
    assert set(_samples(mono).tolist()) == {2000}


def test_to_mono_resamples_48k_to_16k() -> None:
    out = to_mono(_stereo(48000, 48000, -4000, 0), 16000)  # 1 s of stereo
    assert (out.num_channels, out.sample_rate) == (1, 16000)
    assert abs(out.samples_per_channel - 16000) <= 160  # 1 s, give or take the filter
    assert abs(int(np.median(_samples(out))) + 2000) < 50


def test_to_mono_passes_matching_audio_through() -> None:
    frame = _sine(16000, 0.5)
    out = to_mono(frame, 16000)
    assert out.samples_per_channel == 8000
    assert bytes(out.data) == bytes(frame.data)


def test_mono_resampler_streams_and_flushes_the_tail() -> None:
    resampler = MonoResampler(16000)
    frame = _stereo(48000, 480, 300, 300)  # 10 ms
    out = [f for _ in range(100) for f in resampler.push(frame)] + resampler.flush()
    assert {(f.sample_rate, f.num_channels) for f in out} == {(16000, 1)}
    assert abs(sum(f.samples_per_channel for f in out) - 16000) <= 160


def test_mono_resampler_rejects_a_rate_change() -> None:
    resampler = MonoResampler(16000)
    resampler.push(_sine(16000, 0.01))
    with pytest.raises(ValueError):
        resampler.push(_sine(48000, 0.01))
