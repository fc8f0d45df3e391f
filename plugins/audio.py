"""Downmix and resample livekit audio frames: the one copy the plugins and the simulator share.

Resampling is livekit's sox resampler (``rtc.AudioResampler``); only the downmix is ours,
because livekit has none (the resampler keeps the channel count).
"""

from __future__ import annotations

import numpy as np
from livekit import rtc


def downmix(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    """``frame`` as mono, channels averaged; a mono frame is returned as is."""
    if frame.num_channels == 1:
        return frame
    samples = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
    mono = samples.mean(axis=1).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, len(mono))


class MonoResampler:
    """Frames of any channel count in, mono frames at ``sample_rate`` out, for a stream.

    The first frame fixes the input rate (a change is a ``ValueError``, as in livekit's
    ``RecognizeStream``). The resampler's filter state carries over from frame to frame, so
    ``flush()`` at the end of the stream returns the tail it still holds.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        quality: rtc.AudioResamplerQuality = rtc.AudioResamplerQuality.MEDIUM,
    ) -> None:
        self.sample_rate = sample_rate
        self._quality = quality
        self._input_rate: int | None = None
        self._resampler: rtc.AudioResampler | None = None

    def push(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if self._input_rate is None:
            self._input_rate = frame.sample_rate
            if frame.sample_rate != self.sample_rate:
                self._resampler = rtc.AudioResampler(
                    frame.sample_rate, self.sample_rate, num_channels=1, quality=self._quality
                )
        elif frame.sample_rate != self._input_rate:
            raise ValueError("the sample rate of the input frames must be consistent")
        frame = downmix(frame)
        return self._resampler.push(frame) if self._resampler is not None else [frame]

    def flush(self) -> list[rtc.AudioFrame]:
        return self._resampler.flush() if self._resampler is not None else []


def to_mono(
    frame: rtc.AudioFrame,
    sample_rate: int,
    *,
    quality: rtc.AudioResamplerQuality = rtc.AudioResamplerQuality.MEDIUM,
) -> rtc.AudioFrame:
    """One whole frame as mono ``sample_rate`` audio (passed through when it already is)."""
    resampler = MonoResampler(sample_rate, quality=quality)
    frames = [*resampler.push(frame), *resampler.flush()]
    if not frames:  # too short for the resampler to return anything
        return rtc.AudioFrame(b"", sample_rate, 1, 0)
    return rtc.combine_audio_frames(frames)
